"""One window of a shadow run: champion and challenger on the same frames, summed up for the wire."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import numpy as np

from edge_agent.runtime import Prediction
from protocol.messages import DefectOutput, ModelRef
from protocol.shadow import SCORE_BINS, VERDICT_DEFECT, VERDICT_GOOD, AgreementCell, ShadowComparison


def verdict(prediction: Prediction) -> str:
    """What the model decided for the frame: defect or good for a defect model, else its label.

    A defect model's labels name kinds of defect, and two releases may name them differently; the
    decision that sorts a part is ``is_defect``, so that is what is compared.
    """
    output = prediction.output
    if isinstance(output, DefectOutput):
        return VERDICT_DEFECT if output.is_defect else VERDICT_GOOD
    return output.label


def score_of(prediction: Prediction) -> float:
    """The score compared: a defect model's defect probability (0.5 at its threshold), else its confidence."""
    output = prediction.output
    if isinstance(output, DefectOutput):
        return output.score if output.is_defect else 1.0 - output.score
    return float(output.score)


def _bin(score: float) -> int:
    return min(SCORE_BINS - 1, max(0, int(score * SCORE_BINS)))


def _quantile(values: list[float], q: float) -> float | None:
    return float(np.quantile(np.asarray(values), q)) if values else None


class Window:
    """Counts of one window; not thread-safe (the slot's shadow holds its lock around it)."""

    def __init__(self, slot: str, champion: ModelRef, challenger: ModelRef, started_at: datetime) -> None:
        self.slot = slot
        self.champion = champion
        self.challenger = challenger
        self.started_at = started_at
        self.compared = 0
        self.skipped = 0
        self.errors = 0
        self.cells: Counter[tuple[str, str]] = Counter()
        self.champion_bins = [0] * SCORE_BINS
        self.challenger_bins = [0] * SCORE_BINS
        self.champion_ms: list[float] = []
        self.challenger_ms: list[float] = []
        self.capture_id: str | None = None
        self.captured = 0

    @property
    def frames(self) -> int:
        """Frames the window accounts for: compared, skipped, or lost to a challenger error."""
        return self.compared + self.skipped + self.errors

    def compare(
        self, champion: Prediction, challenger: Prediction, champion_ms: float, challenger_ms: float
    ) -> bool:
        """Count one frame both models ran; True when their verdicts differ."""
        ours, theirs = verdict(champion), verdict(challenger)
        self.compared += 1
        self.cells[(ours, theirs)] += 1
        self.champion_bins[_bin(score_of(champion))] += 1
        self.challenger_bins[_bin(score_of(challenger))] += 1
        self.champion_ms.append(champion_ms)
        self.challenger_ms.append(challenger_ms)
        return ours != theirs

    def record(self, ended_at: datetime) -> ShadowComparison:
        """The window as a comparison record."""
        return ShadowComparison(
            slot=self.slot,
            champion=self.champion,
            challenger=self.challenger,
            started_at=self.started_at,
            ended_at=max(ended_at, self.started_at),
            compared=self.compared,
            skipped=self.skipped,
            challenger_errors=self.errors,
            matrix=tuple(
                AgreementCell(champion=a, challenger=b, frames=n) for (a, b), n in sorted(self.cells.items())
            ),
            champion_scores=tuple(self.champion_bins),
            challenger_scores=tuple(self.challenger_bins),
            champion_p50_ms=_quantile(self.champion_ms, 0.5),
            champion_p95_ms=_quantile(self.champion_ms, 0.95),
            challenger_p50_ms=_quantile(self.challenger_ms, 0.5),
            challenger_p95_ms=_quantile(self.challenger_ms, 0.95),
            capture_id=self.capture_id,
            captured=self.captured,
        )
