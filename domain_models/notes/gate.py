"""The INT8 gate on hand-written notes: try quantization variants in order, ship the first that passes.

The gate set is the hand-written DEV set only (``data/dev.jsonl``); generated notes never enter
it. The TEST set (``data/test.jsonl``) is scored after the choice is made, for the card only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from domain_models.common import GateResult
from domain_models.notes.data import MAX_LENGTH, LabelledNotes
from domain_models.notes.evaluate import NotesMetrics, OnnxNotes, evaluate
from domain_models.notes.quant import VARIANTS, Scope, build
from domain_models.notes.release import gate_heads

log = logging.getLogger(__name__)

# The order the release tries variants in, fastest first; chosen from the DEV sensitivity study
# (artifacts/SENSITIVITY.md): every dynamic variant that quantizes the FFNs of all layers flipped 31-105 urgency
# argmaxes of 834 DEV + generated notes (whether it passes a 1-point gate on 234 notes is then
# chance), and the attention-only ones (10-16 flips) lost 1.4-1.9 urgency points on DEV at twice
# the size. "weights-only" keeps activations FP32 (8 flips): 4x smaller than FP32, not faster.
CANDIDATES: tuple[str, ...] = ("full", "weights-only")


@dataclass(frozen=True)
class VariantReport:
    """One variant as the gate saw it on DEV."""

    scope: Scope
    path: Path
    dev: NotesMetrics
    gates: list[GateResult]
    size_bytes: int

    @property
    def passed(self) -> bool:
        """Within tolerance on every head."""
        return all(g.passed for g in self.gates)


@dataclass(frozen=True)
class QuantizeResult:
    """Every variant tried (in order) and the FP32 DEV figures they were judged against."""

    fp32: NotesMetrics
    tried: list[VariantReport] = field(default_factory=list)

    @property
    def chosen(self) -> VariantReport | None:
        """The first variant that passed, or None (FP32 ships)."""
        return next((v for v in self.tried if v.passed), None)

    @property
    def passed(self) -> bool:
        """Whether some INT8 variant passed the gate."""
        return self.chosen is not None

    @property
    def gates(self) -> list[GateResult]:
        """The gate lines of the chosen variant, else of the last one tried."""
        if self.chosen is not None:
            return self.chosen.gates
        return self.tried[-1].gates if self.tried else []


def try_variants(
    fp32_path: Path,
    work: Path,
    tokenizer: Path,
    dev: LabelledNotes,
    tolerance: float,
    names: tuple[str, ...] = CANDIDATES,
    stop_at_first_pass: bool = True,
) -> QuantizeResult:
    """Build the variants ``names`` in order and gate each on ``dev``; stop at the first pass."""
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown quantization variant(s) {unknown}; known: {sorted(VARIANTS)}")
    fp32 = evaluate(OnnxNotes(fp32_path, tokenizer, MAX_LENGTH), dev)
    tried: list[VariantReport] = []
    for name in names:
        scope = VARIANTS[name]
        path = work / f"notes-int8-{name}.onnx"
        build(fp32_path, path, scope)
        metrics = evaluate(OnnxNotes(path, tokenizer, MAX_LENGTH), dev)
        report = VariantReport(
            scope, path, metrics, gate_heads(fp32, metrics, tolerance), path.stat().st_size
        )
        tried.append(report)
        for g in report.gates:
            log.info("INT8 gate [%s] on %d DEV notes: %s", name, len(dev), g.describe())
        if report.passed and stop_at_first_pass:
            break
    return QuantizeResult(fp32, tried)
