"""The notes pipeline: fit heads on MiniLM embeddings, export FP32 ONNX, quantize behind the gate.

One command (``factory-models train notes --out domain_models/notes/artifacts --seed 0``) runs
every step; ``export`` and ``quantize`` run the later steps alone. The INT8 gate judges the
hand-written DEV notes only; the hand-written TEST notes are scored after the choice, for the card. Torch is only needed by
``fit`` and ``export``; ``quantize`` and ``evaluate`` need onnxruntime and tokenizers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from domain_models.common import PipelineError
from domain_models.notes import card
from domain_models.notes.data import (
    DEV,
    MAX_LENGTH,
    TEST,
    LabelledNotes,
    generated,
    hand_written,
    load_jsonl,
    model_dir,
    tokenizer_path,
)
from domain_models.notes.evaluate import OnnxNotes, evaluate, latency_table
from domain_models.notes.extra import EXTRA_WEIGHT, ExtraNotes, fit_heads_with_extra
from domain_models.notes.gate import CANDIDATES, QuantizeResult, try_variants
from domain_models.notes.head import Heads
from domain_models.notes.release import write_release

log = logging.getLogger(__name__)

VERSION = "1.1.0"
PARENT_VERSION = "1.0.0"
VAL_SEED_OFFSET = 1000  # generated validation notes use seed + this, never the training stream


@dataclass(frozen=True)
class FitResult:
    """Heads and where they were written."""

    heads: Heads
    path: Path
    train_count: int
    data_sha256: str


def _data_hash(notes: LabelledNotes) -> str:
    digest = hashlib.sha256()
    for text, c, u in zip(notes.texts, notes.category, notes.urgency, strict=True):
        digest.update(f"{text}\t{c}\t{u}\n".encode())
    return digest.hexdigest()


def fit(
    work: Path, seed: int, n_train: int, extra: ExtraNotes | None = None, extra_weight: float = EXTRA_WEIGHT
) -> FitResult:
    """Embed ``n_train`` generated notes (and ``extra``, notes operators labelled) with the torch
    encoder and fit both heads (``extra`` feeds the category head, see ``extra.py``)."""
    import torch

    from domain_models.notes.encoder import NotesNet, torch_embeddings

    torch.manual_seed(seed)
    folder = model_dir()
    train = generated(n_train, seed)
    blank = Heads(*(np.zeros(s, np.float32) for s in ((384, 6), (6,), (384, 3), (3,))))
    net = NotesNet(folder, blank)
    log.info("embedding %d generated notes (seed %d)", n_train, seed)
    x = torch_embeddings(net, train.texts, folder / "tokenizer.json")
    x_extra = None
    digest = _data_hash(train)
    if extra is not None:
        log.info("embedding %d labelled notes (weight %g each)", len(extra), extra_weight)
        x_extra = torch_embeddings(net, extra.texts, folder / "tokenizer.json")
        lines = "".join(f"{t}\t{c}\n" for t, c in zip(extra.texts, extra.category, strict=True))
        digest = hashlib.sha256(f"{digest}\n{extra_weight:g}\n{lines}".encode()).hexdigest()
    heads = fit_heads_with_extra(
        x, train.category, train.urgency, x_extra, extra, seed=seed, weight=extra_weight
    )
    work.mkdir(parents=True, exist_ok=True)
    path = work / "heads.npz"
    heads.save(path)
    return FitResult(heads, path, n_train, digest)


def export(heads: Heads, onnx_path: Path) -> Path:
    """Encoder + pooling + heads -> one FP32 ONNX graph."""
    from domain_models.notes.encoder import NotesNet, export_onnx

    folder = model_dir()
    export_onnx(NotesNet(folder, heads), onnx_path, folder / "tokenizer.json")
    return onnx_path


def _variant_rows(q: QuantizeResult, tokenizer: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for v in q.tried:
        rows.append(
            {
                "name": v.scope.name,
                "what": v.scope.describe(),
                "dev": asdict(v.dev),
                "gates": [g.describe() for g in v.gates],
                "passed": v.passed,
                "size_bytes": v.size_bytes,
                "latency_ms_per_note": latency_table(v.path, tokenizer, MAX_LENGTH),
            }
        )
    return rows


def package(
    q: QuantizeResult,
    fp32_path: Path,
    tokenizer: Path,
    out: Path,
    facts: dict[str, object],
    fallback_fp32: bool,
    test: LabelledNotes | None = None,
) -> Path:
    """Write the release (the chosen INT8 variant, else FP32 when ``fallback_fp32``) and its card.

    ``test`` (the hand-written TEST set) is scored only here, after the choice, for the card.
    """
    chosen = q.chosen
    if chosen is None and not fallback_fp32:
        raise PipelineError("INT8 refused: " + "; ".join(g.describe() for g in q.gates))
    if chosen is None:
        log.warning("INT8 refused, packaging FP32: %s", "; ".join(g.describe() for g in q.gates))
    shipped = chosen.path if chosen is not None else fp32_path
    precision = f"int8 {chosen.scope.name}" if chosen is not None else "fp32"
    dev_metrics = chosen.dev if chosen is not None else q.fp32
    seed = int(str(facts.get("seed", 0)))
    val = evaluate(OnnxNotes(shipped, tokenizer, MAX_LENGTH), generated(300, seed + VAL_SEED_OFFSET))
    test_figures: dict[str, object] = {}
    if test is not None:
        test_figures["fp32"] = asdict(evaluate(OnnxNotes(fp32_path, tokenizer, MAX_LENGTH), test))
        for v in q.tried:
            test_figures[v.scope.name] = asdict(evaluate(OnnxNotes(v.path, tokenizer, MAX_LENGTH), test))
    shipped_test = test_figures.get(chosen.scope.name if chosen is not None else "fp32")
    metrics = {
        "dev_category_macro_f1": round(dev_metrics.category_macro_f1, 4),
        "dev_urgency_macro_f1": round(dev_metrics.urgency_macro_f1, 4),
        "generated_category_macro_f1": round(val.category_macro_f1, 4),
        "generated_urgency_macro_f1": round(val.urgency_macro_f1, 4),
    }
    if isinstance(shipped_test, dict):
        metrics["test_category_macro_f1"] = round(float(shipped_test["category_macro_f1"]), 4)
        metrics["test_urgency_macro_f1"] = round(float(shipped_test["urgency_macro_f1"]), 4)
    manifest_path = write_release(
        shipped,
        tokenizer,
        out,
        VERSION,
        precision,
        metrics=metrics,
        data_sha256=str(facts["data_sha256"]) if "data_sha256" in facts else None,
        parent_version=PARENT_VERSION,
        # Hand-written DEV notes (never TEST): checked on each gateway's CPU before the model serves.
        golden_texts=load_jsonl(DEV).texts,
    )
    evaluation = {
        "facts": facts,
        "shipped": chosen.scope.name if chosen is not None else "fp32",
        "gates": [g.describe() for g in q.gates],
        "dev": {"fp32": asdict(q.fp32), "shipped": asdict(dev_metrics)},
        "test": test_figures,
        "variants": _variant_rows(q, tokenizer),
        "generated_validation": asdict(val),
        "fp32": {
            "size_bytes": fp32_path.stat().st_size,
            "latency_ms_per_note": latency_table(fp32_path, tokenizer, MAX_LENGTH),
        },
    }
    stem = manifest_path.name.removesuffix(".manifest.json")
    (out / f"{stem}.eval.json").write_text(json.dumps(evaluation, indent=2) + "\n", encoding="utf-8")
    card.write(out / "MODEL_CARD.md", manifest_path, evaluation)
    return manifest_path


def train_all(
    out: Path,
    seed: int,
    n_train: int,
    tolerance: float,
    work: Path | None = None,
    candidates: tuple[str, ...] = CANDIDATES,
    extra: ExtraNotes | None = None,
    extra_weight: float = EXTRA_WEIGHT,
) -> Path:
    """Every step from generated (and operator-labelled ``extra``) notes to a packaged release in
    ``out``; return its manifest."""
    dev, test = hand_written()
    with tempfile.TemporaryDirectory(prefix="notes-") as tmp:
        scratch = work or Path(tmp)
        fitted = fit(scratch, seed, n_train, extra, extra_weight)
        fp32_path = export(fitted.heads, scratch / "notes-fp32.onnx")
        tokenizer = tokenizer_path()
        q = try_variants(fp32_path, scratch, tokenizer, dev, tolerance, candidates)
        facts: dict[str, object] = {
            "seed": seed,
            "train_notes": n_train,
            "labelled_notes": len(extra) if extra is not None else 0,
            "data_sha256": fitted.data_sha256,
            "dev_file": DEV.name,
            "dev_notes": len(dev),
            "test_file": TEST.name,
            "test_notes": len(test),
            "tolerance_points": tolerance,
            "gate_notes": f"{len(dev)} hand-written DEV notes ({DEV.name}) only",
            "candidates": list(candidates),
        }
        return package(q, fp32_path, tokenizer, out, facts, fallback_fp32=True, test=test)
