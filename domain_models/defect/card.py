"""Writes a release beside the ONNX file: the manifest, the evaluation figures and MODEL_CARD.md.

The card's words are in ``domain_models/templates/defect_card.md.j2``.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from pathlib import Path

import onnx

from domain_models.cards import cpu_count, render
from domain_models.defect.metrics import DefectMetrics
from protocol.inference import DEFECT_LABELS, DEFECT_TYPES, GOOD_LABEL
from protocol.manifest import MANIFEST_SUFFIX, ModelManifest, Preprocessing, TensorSpec, sha256_file
from protocol.messages import utcnow

NAME, VERSION = "defect-cnn", "1.0.0"
HEADLINE_SET = "unseen_seed"  # the manifest's metrics: same look as training, parts never seen
REPRODUCE = "python -m domain_models.defect.train --out domain_models/defect/artifacts --seed {seed}"


def _tensor_specs(onnx_path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Read the I/O names and shapes from the graph itself, so the manifest cannot drift from it."""
    graph = onnx.load(str(onnx_path)).graph

    def spec(value: onnx.ValueInfoProto) -> TensorSpec:
        dims = tuple(d.dim_param if d.dim_param else d.dim_value for d in value.type.tensor_type.shape.dim)
        return TensorSpec(name=value.name, dtype="float32", shape=dims)

    return tuple(spec(v) for v in graph.input), tuple(spec(v) for v in graph.output)


def write_release(
    out: Path,
    onnx_path: Path,
    spec: Preprocessing,
    results: dict[str, DefectMetrics],
    latency_ms: dict[str, float],
    facts: dict[str, object],
) -> Path:
    """Write ``<name>-<version>.manifest.json``, ``...eval.json`` and ``MODEL_CARD.md``; returns the manifest path."""
    inputs, outputs = _tensor_specs(onnx_path)
    headline = results[HEADLINE_SET]
    manifest = ModelManifest(
        name=NAME,
        version=VERSION,
        task="defect",
        description="Small CNN: good vs scratch / hole / stain / crack on one part per conveyor frame",
        artifact=onnx_path.name,
        sha256=sha256_file(onnx_path),
        size_bytes=onnx_path.stat().st_size,
        inputs=inputs,
        outputs=outputs,
        preprocessing=spec,
        labels=DEFECT_LABELS,
        good_label=GOOD_LABEL,
        thresholds={"defect": 0.5},
        metrics=headline.headline(),
        created_at=utcnow(),
    )
    manifest_path = out / f"{NAME}-{VERSION}{MANIFEST_SUFFIX}"
    manifest_path.write_text(manifest.model_dump_json(indent=2) + "\n")
    evaluation = {
        "facts": facts,
        "latency_ms": latency_ms,
        "sets": {k: asdict(v) for k, v in results.items()},
    }
    (out / f"{NAME}-{VERSION}.eval.json").write_text(json.dumps(evaluation, indent=2) + "\n")
    (out / "MODEL_CARD.md").write_text(_card(manifest, results, latency_ms, facts))
    return manifest_path


def _card(
    manifest: ModelManifest,
    results: dict[str, DefectMetrics],
    latency: dict[str, float],
    facts: dict[str, object],
) -> str:
    seed = int(str(facts["seed"]))
    return render(
        "defect_card.md.j2",
        m=manifest,
        p=manifest.preprocessing,
        good=GOOD_LABEL,
        defect_types=DEFECT_TYPES,
        facts=facts,
        # The seeds train.run renders each set from (a test set is never a seed training saw).
        seeds={
            "train": seed,
            "dim": seed + 500,
            "val": seed + 1000,
            "unseen_seed": seed + 2000,
            "unseen_appearance": seed + 3000,
        },
        results=results,
        shifted=results.get("unseen_appearance"),  # how the model fares on a look it never trained on
        latency=latency,
        cpus=cpu_count(),
        arch=platform.machine(),
        reproduce=REPRODUCE.format(seed=facts["seed"]),
    )
