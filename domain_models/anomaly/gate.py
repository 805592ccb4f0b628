"""The anomaly model's INT8 gate: threshold-free metrics, each with a paired bootstrap interval.

Gated (FP32 minus INT8, in points, on the folder's test images):

- image AUROC;
- best F1: F1 at each model's own best threshold on the same images. Unlike F1 at a threshold
  set from a few held-out good images, it does not jump when one image moves (F1 is flat near
  its maximum), so a 1-point tolerance means something.

A metric passes only if its drop is within the tolerance **and** the folder resolves it: the 95%
interval of the drop (images resampled as FP32/INT8 pairs) is no wider than +- the tolerance
(an interval wholly beyond the tolerance is a resolved failure, however wide).
Otherwise the verdict says so and how many test images would resolve it, instead of a pass or
fail that a different draw of the same images would flip.

F1 and false rejects at the shipped operating point (threshold from the held-out good images
at the target false-reject rate) are reported with their intervals but not gated: measured on
the bundled model they move by several points between draws of the same hold-out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from domain_models.anomaly.stats import PairedDrop, best_f1, paired_drop, paired_f1_drop, spearman
from domain_models.common import GateResult, PipelineError, gate, roc_auc

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


def _auroc(scores: Floats, truth: Bools) -> float:
    return roc_auc(truth, scores)


@dataclass(frozen=True)
class GateCheck:
    """One gated metric: the point verdict and whether the folder can resolve the tolerance."""

    result: GateResult
    interval: PairedDrop
    goods: int
    defects: int

    @property
    def resolved(self) -> bool:
        """True when the drop's 95% interval is within +- the tolerance, or wholly beyond it."""
        clearly_worse = self.interval.drop.low * 100.0 > self.result.tolerance_points
        return clearly_worse or self.interval.resolves(self.result.tolerance_points)

    @property
    def passed(self) -> bool:
        """Within tolerance and resolved."""
        return self.result.passed and self.resolved

    def images_needed(self) -> tuple[int, int]:
        """Good and defective test images that would resolve the tolerance (same mix as now)."""
        _, total = self.interval.images_needed(self.result.tolerance_points)
        share = self.goods / max(self.goods + self.defects, 1)
        goods = int(np.ceil(total * share))
        return goods, total - goods

    def describe(self) -> str:
        """One line: both figures, the drop with its interval, and the verdict."""
        r, d = self.result, self.interval.drop
        if not self.resolved:
            goods, defects = self.images_needed()
            verdict = (
                f"CANNOT RESOLVE {r.tolerance_points:.2f} point(s) (+-{self.interval.half_width_points:.2f}): "
                f"about {goods} good + {defects} defective test images would"
            )
        else:
            verdict = f"{'within' if r.passed else 'EXCEEDS'} tolerance {r.tolerance_points:.2f}"
        return (
            f"{r.metric}: FP32 {r.fp32:.4f}, INT8 {r.int8:.4f}, drop {r.drop_points:.2f} points, 95% interval "
            f"[{d.low * 100:.2f}, {d.high * 100:.2f}] on {self.goods} good + {self.defects} defective test "
            f"images ({verdict})"
        )


@dataclass(frozen=True)
class PairedScores:
    """FP32 and INT8 raw scores on the same held-out good and test images."""

    hold_fp32: Floats
    hold_int8: Floats
    test_fp32: Floats
    test_int8: Floats
    truth: Bools

    def __post_init__(self) -> None:
        if self.hold_fp32.shape != self.hold_int8.shape or not (
            self.test_fp32.shape == self.test_int8.shape == self.truth.shape
        ):
            raise PipelineError(
                "FP32 and INT8 were scored on different images: held-out "
                f"{len(self.hold_fp32)} vs {len(self.hold_int8)}, test {len(self.test_fp32)} vs "
                f"{len(self.test_int8)} ({len(self.truth)} labels)"
            )

    def rank_correlation(self) -> float:
        """Spearman of INT8 against FP32 over every scored image (1.0 = a monotone map)."""
        return spearman(
            np.concatenate([self.hold_fp32, self.test_fp32]), np.concatenate([self.hold_int8, self.test_int8])
        )


def gate_checks(
    scores: PairedScores, tolerance: float, draws: int = 1000, seed: int = 0
) -> tuple[GateCheck, ...]:
    """The gated metrics of :mod:`gate`'s docstring, each with its paired interval."""
    y = scores.truth
    goods, defects = int((~y).sum()), int(y.sum())
    checks = []
    for name, metric in (("image AUROC", _auroc), ("best F1", best_f1)):
        result = gate(name, metric(scores.test_fp32, y), metric(scores.test_int8, y), tolerance)
        interval = paired_drop(metric, scores.test_fp32, scores.test_int8, y, draws=draws, seed=seed)
        checks.append(GateCheck(result, interval, goods, defects))
    return tuple(checks)


def operating_point_drop(scores: PairedScores, frr: float, draws: int = 1000, seed: int = 0) -> PairedDrop:
    """F1 drop at the shipped operating point, hold-out and test resampled together (not gated)."""
    return paired_f1_drop(
        scores.hold_fp32,
        scores.hold_int8,
        scores.test_fp32,
        scores.test_int8,
        scores.truth,
        frr,
        draws=draws,
        seed=seed,
    )


def refusal(checks: Sequence[GateCheck], tolerance: float) -> str:
    """Why INT8 was refused, in one line a user can act on ('passed' when it was not)."""
    unresolved = [c for c in checks if not c.resolved]
    # An unresolved drop is neither a pass nor a fail: only resolved ones are called exceeded.
    exceeded = [c for c in checks if c.resolved and not c.result.passed]
    parts = []
    if unresolved:
        goods = max(c.images_needed()[0] for c in unresolved)
        defects = max(c.images_needed()[1] for c in unresolved)
        worst = max(c.interval.half_width_points for c in unresolved)
        parts.append(
            f"this folder's test set ({unresolved[0].goods} good + {unresolved[0].defects} defective) "
            f"cannot resolve {tolerance} point(s): the drop is known only to +-{worst:.2f} points "
            f"({', '.join(c.result.metric for c in unresolved)}), so neither pass nor fail can be told; "
            f"add test images (test/good, test/<type>), about {goods} good and {defects} defective in all"
        )
    if exceeded:
        names = ", ".join(c.result.metric for c in exceeded)
        parts.append(f"drop exceeds {tolerance} point(s) on {names}")
    return "; ".join(parts) if parts else "passed"
