"""Writes a release beside the ONNX file: the manifest, the evaluation figures and MODEL_CARD.md.

The card's words are in ``domain_models/templates/defect_card.md.j2``.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from pathlib import Path

from domain_models.cards import cpu_count, render
from domain_models.common import artifact_fields
from domain_models.defect.metrics import DefectMetrics
from protocol.inference import DEFAULT_DEFECT_THRESHOLD, DEFECT_KEY, DEFECT_LABELS, DEFECT_TYPES, GOOD_LABEL
from protocol.manifest import MANIFEST_SUFFIX, ModelManifest, Preprocessing
from protocol.messages import utcnow

NAME, VERSION = "defect-cnn", "1.0.0"
HEADLINE_SET = "unseen_seed"  # the manifest's metrics: same look as training, parts never seen
REPRODUCE = "python -m domain_models.defect.train --out domain_models/defect/artifacts --seed {seed}"


def write_release(
    out: Path,
    onnx_path: Path,
    spec: Preprocessing,
    results: dict[str, DefectMetrics],
    latency_ms: dict[str, float],
    facts: dict[str, object],
) -> Path:
    """Write ``<name>-<version>.manifest.json``, ``...eval.json`` and ``MODEL_CARD.md``; returns the manifest path."""
    headline = results[HEADLINE_SET]
    manifest = ModelManifest(
        **artifact_fields(onnx_path),
        name=NAME,
        version=VERSION,
        task="defect",
        description="Small CNN: good vs scratch / hole / stain / crack on one part per conveyor frame",
        preprocessing=spec,
        labels=DEFECT_LABELS,
        good_label=GOOD_LABEL,
        thresholds={DEFECT_KEY: DEFAULT_DEFECT_THRESHOLD},
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
