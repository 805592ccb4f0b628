"""INT8 quantization with its accuracy gate, and the release folder (ONNX, manifest, golden)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from domain_models.common import GateResult, PipelineError, gate, tensor_specs
from domain_models.notes.data import MAX_LENGTH, URGENCY_KEY_PREFIX
from domain_models.notes.evaluate import NotesMetrics, OnnxNotes
from protocol.manifest import (
    MANIFEST_SUFFIX,
    GoldenSample,
    Lineage,
    ModelManifest,
    TextPreprocessing,
    sha256_file,
)
from protocol.messages import utcnow
from simulators.notes_line import CATEGORIES, URGENCIES

log = logging.getLogger(__name__)

NAME = "notes-minilm"
TOKENIZER_FILE = "tokenizer.json"
GOLDEN_TEXT = "Hydraulic hose burst on press 4, oil all over the floor, line is down"
DEFAULT_TOLERANCE_POINTS = 1.0


def head_points(metrics: NotesMetrics) -> dict[str, float]:
    """Macro-F1 per head (0-1), keyed by head."""
    return {"category_macro_f1": metrics.category_macro_f1, "urgency_macro_f1": metrics.urgency_macro_f1}


WORD_EMBEDDINGS = "encoder.embeddings.word_embeddings.weight"


def quantize_int8(fp32: Path, int8: Path) -> None:
    """INT8 of the transformer: dynamic per-channel MatMuls + per-row word embeddings; heads stay FP32.

    onnxruntime quantizes a Gather's table with ONE scale for all 30,522 rows, which cost ~1.7
    urgency macro-F1 points; rows quantized one by one keep the embeddings faithful at the same size.
    """
    graph = onnx.load(str(fp32))
    # The heads are 0.01% of the weights; keeping them FP32 costs nothing and keeps scores stable.
    heads = [n.name for n in graph.graph.node if n.name.startswith(("/category/", "/urgency/"))]
    heads += [f"{name}_MatMul" for name in heads]  # the quantizer rewrites Gemm as <name>_MatMul + Add
    # The quantizer logs one INFO line per activation on the root logger; hundreds of them hide ours.
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        quantize_dynamic(
            str(fp32),
            str(int8),
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm"],
            nodes_to_exclude=heads,
        )
    finally:
        root.setLevel(level)
    model = onnx.load(str(int8))
    quantize_embedding_rows(model, WORD_EMBEDDINGS)
    onnx.save(model, str(int8))
    log.info("quantized %s -> %s (%.1f MB)", fp32.name, int8.name, int8.stat().st_size / 1e6)


def quantize_embedding_rows(model: onnx.ModelProto, name: str) -> None:
    """Replace the FP32 table ``name`` by int8 rows with one scale per row, dequantized after Gather."""
    graph = model.graph
    index = next((i for i, t in enumerate(graph.initializer) if t.name == name), None)
    if index is None:
        raise PipelineError(f"quantize: the graph has no initializer {name!r} to quantize")
    table = numpy_helper.to_array(graph.initializer[index]).astype(np.float32)
    scale = np.abs(table).max(axis=1, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    rows = np.clip(np.round(table / scale), -127, 127).astype(np.int8)
    del graph.initializer[index]
    graph.initializer.extend(
        [
            numpy_helper.from_array(rows, f"{name}_int8"),
            numpy_helper.from_array(scale.astype(np.float32), f"{name}_row_scale"),
        ]
    )
    nodes = list(graph.node)
    rewritten = []
    for node in nodes:
        if node.op_type != "Gather" or node.input[0] != name:
            rewritten.append(node)
            continue
        out, ids = node.output[0], node.input[1]
        rewritten += [
            helper.make_node(
                "Gather", [f"{name}_int8", ids], [f"{out}_int8"], name=f"{node.name}_int8", axis=0
            ),
            helper.make_node(
                "Cast", [f"{out}_int8"], [f"{out}_f"], name=f"{node.name}_cast", to=TensorProto.FLOAT
            ),
            helper.make_node(
                "Gather", [f"{name}_row_scale", ids], [f"{out}_s"], name=f"{node.name}_scale", axis=0
            ),
            helper.make_node("Mul", [f"{out}_f", f"{out}_s"], [out], name=f"{node.name}_dequant"),
        ]
    if len(rewritten) == len(nodes):
        raise PipelineError(f"quantize: no Gather reads {name!r}")
    del graph.node[:]
    graph.node.extend(rewritten)


def gate_heads(fp32: NotesMetrics, int8: NotesMetrics, tolerance_points: float) -> list[GateResult]:
    """One gate per head; INT8 ships only if every one passed."""
    a, b = head_points(fp32), head_points(int8)
    return [gate(k, a[k], b[k], tolerance_points) for k in a]


def write_release(
    onnx_path: Path,
    tokenizer: Path,
    out: Path,
    version: str,
    precision: str,
    metrics: dict[str, float],
    data_sha256: str | None = None,
) -> Path:
    """Copy the graph and tokenizer to ``out`` with a golden note and a manifest; return the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{NAME}-{version}"
    artifact = out / f"{stem}.onnx"
    if onnx_path.resolve() != artifact.resolve():
        shutil.copyfile(onnx_path, artifact)
    shutil.copyfile(tokenizer, out / TOKENIZER_FILE)
    golden_file = out / f"{stem}.golden.txt"
    golden_file.write_text(GOLDEN_TEXT + "\n", encoding="utf-8")
    cat, urg, _ = OnnxNotes(artifact, out / TOKENIZER_FILE, MAX_LENGTH).run([GOLDEN_TEXT])
    scores = {c: round(float(p), 6) for c, p in zip(CATEGORIES, cat[0], strict=True)}
    scores |= {URGENCY_KEY_PREFIX + u: round(float(p), 6) for u, p in zip(URGENCIES, urg[0], strict=True)}
    inputs, outputs = tensor_specs(artifact)
    manifest = ModelManifest(
        name=NAME,
        version=version,
        task="notes",
        description=(
            f"Maintenance-note triage ({precision}): all-MiniLM-L6-v2 + mean pooling + two linear heads. "
            "labels = categories (order of category_probs); thresholds 'urgency.<label>' give each "
            "urgency label's index in urgency_probs."
        ),
        artifact=artifact.name,
        sha256=sha256_file(artifact),
        size_bytes=artifact.stat().st_size,
        files={TOKENIZER_FILE: sha256_file(out / TOKENIZER_FILE), golden_file.name: sha256_file(golden_file)},
        inputs=inputs,
        outputs=outputs,
        text=TextPreprocessing(tokenizer=TOKENIZER_FILE, max_length=MAX_LENGTH, lowercase=False),
        golden=GoldenSample(
            input=golden_file.name,
            expected_label=CATEGORIES[int(cat[0].argmax())],
            expected_scores=scores,
            tolerance=0.02,
        ),
        lineage=Lineage(data_sha256=data_sha256),
        labels=CATEGORIES,
        thresholds={URGENCY_KEY_PREFIX + u: float(i) for i, u in enumerate(URGENCIES)},
        metrics=metrics,
        created_at=utcnow(),
    )
    path = out / f"{stem}{MANIFEST_SUFFIX}"
    path.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    log.info("release %s written to %s", stem, out)
    return path
