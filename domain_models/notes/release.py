"""The per-head accuracy gate and the release folder (ONNX, manifest, golden); variants are in quant.py."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from domain_models import golden_set
from domain_models.common import GateResult, artifact_fields, gate
from domain_models.notes.data import MAX_LENGTH
from domain_models.notes.evaluate import NotesMetrics, OnnxNotes
from protocol.inference import NOTE_CATEGORIES, NOTE_URGENCIES, URGENCY_PREFIX
from protocol.manifest import (
    MANIFEST_SUFFIX,
    GoldenSample,
    Lineage,
    ModelManifest,
    TextPreprocessing,
    sha256_file,
)
from protocol.messages import utcnow

log = logging.getLogger(__name__)

NAME = "notes-minilm"
TOKENIZER_FILE = "tokenizer.json"
GOLDEN_TEXT = "Hydraulic hose burst on press 4, oil all over the floor, line is down"
DEFAULT_TOLERANCE_POINTS = 1.0


def head_points(metrics: NotesMetrics) -> dict[str, float]:
    """Macro-F1 per head (0-1), keyed by head."""
    return {"category_macro_f1": metrics.category_macro_f1, "urgency_macro_f1": metrics.urgency_macro_f1}


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
    parent_version: str | None = None,
    golden_texts: Sequence[str] = (),
) -> Path:
    """Copy the graph and tokenizer to ``out`` with a golden note and a manifest; return the manifest.

    With ``golden_texts`` the release carries a golden set of up to 32 of them (evenly spread),
    checked on each gateway's CPU before the model serves.
    """
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{NAME}-{version}"
    artifact = out / f"{stem}.onnx"
    if onnx_path.resolve() != artifact.resolve():
        shutil.copyfile(onnx_path, artifact)
    shutil.copyfile(tokenizer, out / TOKENIZER_FILE)
    golden_file = out / f"{stem}.golden.txt"
    golden_file.write_text(GOLDEN_TEXT + "\n", encoding="utf-8")
    cat, urg, _ = OnnxNotes(artifact, out / TOKENIZER_FILE, MAX_LENGTH).run([GOLDEN_TEXT])
    scores = {c: round(float(p), 6) for c, p in zip(NOTE_CATEGORIES, cat[0], strict=True)}
    scores |= {URGENCY_PREFIX + u: round(float(p), 6) for u, p in zip(NOTE_URGENCIES, urg[0], strict=True)}
    manifest = ModelManifest(
        **artifact_fields(artifact),
        name=NAME,
        version=version,
        task="notes",
        description=(
            f"Maintenance-note triage ({precision}): all-MiniLM-L6-v2 + mean pooling + two linear heads. "
            "labels = categories (order of category_probs); thresholds 'urgency.<label>' give each "
            "urgency label's index in urgency_probs."
        ),
        files={TOKENIZER_FILE: sha256_file(out / TOKENIZER_FILE), golden_file.name: sha256_file(golden_file)},
        text=TextPreprocessing(tokenizer=TOKENIZER_FILE, max_length=MAX_LENGTH, lowercase=False),
        golden=GoldenSample(
            input=golden_file.name,
            expected_label=NOTE_CATEGORIES[int(cat[0].argmax())],
            expected_scores=scores,
            tolerance=0.02,
        ),
        lineage=Lineage(parent_version=parent_version, data_sha256=data_sha256),
        labels=NOTE_CATEGORIES,
        thresholds={URGENCY_PREFIX + u: float(i) for i, u in enumerate(NOTE_URGENCIES)},
        metrics=metrics,
        created_at=utcnow(),
    )
    path = out / f"{stem}{MANIFEST_SUFFIX}"
    path.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    if golden_texts:
        step = max(len(golden_texts) / golden_set.COUNT, 1.0)
        chosen = [golden_texts[int(i * step)] for i in range(min(golden_set.COUNT, len(golden_texts)))]
        golden_set.attach(path, chosen)
    log.info("release %s written to %s", stem, out)
    return path
