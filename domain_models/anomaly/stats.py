"""How precisely a folder measures an operating point: bootstrap figures for the INT8 gate (numpy only).

A threshold set at a 1% false-reject rate from a few dozen good images is the largest of their
scores: one image decides it. F1 at that threshold then moves by more between two draws of the
same hold-out than INT8 moves it, and a 1-point gate compares noise. These helpers measure that
noise so the gate can say when it cannot resolve its tolerance, and how many images would.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from domain_models.common import PipelineError, precision_recall_f1, threshold_at_false_reject

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


def spearman(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Rank correlation of two score lists (1.0 = one is a monotone map of the other)."""
    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if x.shape != y.shape or len(x) < 2:
        raise ValueError(f"spearman needs two equal lists of >= 2 scores, got {len(x)} and {len(y)}")
    rx = np.argsort(np.argsort(x, kind="mergesort"), kind="mergesort").astype(np.float64)
    ry = np.argsort(np.argsort(y, kind="mergesort"), kind="mergesort").astype(np.float64)
    return float(np.corrcoef(rx, ry)[0, 1])


def f1_at(threshold: float, test_scores: Floats, truth: Bools) -> float:
    """F1 of the defect class when ``score >= threshold`` rejects."""
    return precision_recall_f1(truth, test_scores >= threshold).f1


def best_f1(scores: npt.ArrayLike, truth: npt.ArrayLike) -> float:
    """F1 at the model's own best threshold: a property of the score distribution, like AUROC.

    Near its maximum F1 is flat in the threshold, so unlike F1 at a threshold set from a few
    good images it does not jump when one image moves.
    """
    s, y = np.asarray(scores, np.float64).ravel(), np.asarray(truth, bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"best_f1: {len(y)} labels but {len(s)} scores")
    positives = int(y.sum())
    if positives == 0:
        return 0.0
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    rejected = np.arange(1, len(s) + 1)
    # Only cut between distinct scores: a threshold rejects every image of a tied score.
    last_of_tie = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    f1 = 2.0 * tp / (rejected + positives)
    return float(f1[last_of_tie].max())


@dataclass(frozen=True)
class Interval:
    """A point estimate with a 95% bootstrap percentile interval."""

    value: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        """Half the interval's width: the +- a reader should attach to ``value``."""
        return (self.high - self.low) / 2.0

    def points(self) -> str:
        """``83.69 [78.1, 88.2]`` in points (hundredths)."""
        return f"{self.value * 100:.2f} [{self.low * 100:.2f}, {self.high * 100:.2f}]"


def _interval(value: float, draws: Floats) -> Interval:
    low, high = np.percentile(draws, [2.5, 97.5])
    return Interval(value, float(low), float(high))


@dataclass(frozen=True)
class OperatingPoint:
    """One model's threshold, F1 and false-reject rate on test, each with its bootstrap interval."""

    threshold: Interval
    f1: Interval
    false_reject_rate: Interval


def _check(hold: Floats, test: Floats, truth: Bools) -> None:
    if len(hold) < 1:
        raise PipelineError("bootstrap: no held-out good scores")
    if test.shape != truth.shape:
        raise PipelineError(f"bootstrap: {len(test)} test scores but {len(truth)} labels")
    if truth.all() or not truth.any():
        raise PipelineError("bootstrap: test needs both good and defective images")


def operating_point(
    hold: npt.ArrayLike,
    test: npt.ArrayLike,
    truth: npt.ArrayLike,
    frr: float,
    draws: int = 2000,
    seed: int = 0,
) -> OperatingPoint:
    """Resample the held-out good images (threshold) and the test images (F1, false rejects)."""
    h, t, y = np.asarray(hold, np.float64), np.asarray(test, np.float64), np.asarray(truth, bool)
    _check(h, t, y)
    rng = np.random.default_rng(seed)
    thr, f1, fr = np.empty(draws), np.empty(draws), np.empty(draws)
    for i in range(draws):
        th = threshold_at_false_reject(h[rng.integers(0, len(h), len(h))], frr)
        pick = rng.integers(0, len(t), len(t))
        yt, st = y[pick], t[pick]
        thr[i] = th
        f1[i] = f1_at(th, st, yt) if yt.any() else np.nan
        fr[i] = float((st[~yt] >= th).mean()) if (~yt).any() else np.nan
    base = threshold_at_false_reject(h, frr)
    return OperatingPoint(
        threshold=_interval(base, thr),
        f1=_interval(f1_at(base, t, y), f1[np.isfinite(f1)]),
        false_reject_rate=_interval(float((t[~y] >= base).mean()), fr[np.isfinite(fr)]),
    )


@dataclass(frozen=True)
class PairedDrop:
    """FP32 minus INT8 F1 (each at its own threshold from the same hold-out), resampled as pairs."""

    drop: Interval
    holdout: int
    test: int

    def resolves(self, tolerance_points: float) -> bool:
        """True when the 95% interval of the drop is no wider than +- the tolerance."""
        return self.half_width_points <= tolerance_points + 1e-9

    @property
    def half_width_points(self) -> float:
        """Half-width of the drop's 95% interval, in points."""
        return self.drop.half_width * 100.0

    def images_needed(self, tolerance_points: float) -> tuple[int, int]:
        """Held-out good and test images that would shrink the interval to the tolerance.

        Interval width falls as 1/sqrt(n); both sets are scaled by the same factor.
        """
        factor = max(1.0, (self.half_width_points / max(tolerance_points, 1e-9)) ** 2)
        return math.ceil(self.holdout * factor), math.ceil(self.test * factor)


def paired_drop(
    metric: Callable[[Floats, Bools], float],
    test_fp32: npt.ArrayLike,
    test_int8: npt.ArrayLike,
    truth: npt.ArrayLike,
    draws: int = 1000,
    seed: int = 0,
) -> PairedDrop:
    """Bootstrap FP32-minus-INT8 of a threshold-free ``metric(scores, truth)`` on the same resampled images."""
    t32, t8 = np.asarray(test_fp32, np.float64), np.asarray(test_int8, np.float64)
    y = np.asarray(truth, bool)
    _check(t32[:1], t32, y)
    if t32.shape != t8.shape:
        raise PipelineError("paired bootstrap: FP32 and INT8 were scored on different images")
    rng = np.random.default_rng(seed)
    drops = np.empty(draws)
    for i in range(draws):
        pick = rng.integers(0, len(y), len(y))
        yt = y[pick]
        # A draw with one class only has no AUROC or F1; draw again rather than bias the interval.
        while yt.all() or not yt.any():
            pick = rng.integers(0, len(y), len(y))
            yt = y[pick]
        drops[i] = metric(t32[pick], yt) - metric(t8[pick], yt)
    return PairedDrop(drop=_interval(metric(t32, y) - metric(t8, y), drops), holdout=0, test=len(y))


def paired_f1_drop(
    hold_fp32: npt.ArrayLike,
    hold_int8: npt.ArrayLike,
    test_fp32: npt.ArrayLike,
    test_int8: npt.ArrayLike,
    truth: npt.ArrayLike,
    frr: float,
    draws: int = 2000,
    seed: int = 0,
) -> PairedDrop:
    """Bootstrap the F1 drop with the same resampled images for both models (a paired comparison)."""
    h32, h8 = np.asarray(hold_fp32, np.float64), np.asarray(hold_int8, np.float64)
    t32, t8 = np.asarray(test_fp32, np.float64), np.asarray(test_int8, np.float64)
    y = np.asarray(truth, bool)
    _check(h32, t32, y)
    if h32.shape != h8.shape or t32.shape != t8.shape:
        raise PipelineError("paired bootstrap: FP32 and INT8 were scored on different images")
    rng = np.random.default_rng(seed)
    drops = np.empty(draws)
    for i in range(draws):
        hp = rng.integers(0, len(h32), len(h32))
        tp = rng.integers(0, len(t32), len(t32))
        yt = y[tp]
        a = f1_at(threshold_at_false_reject(h32[hp], frr), t32[tp], yt)
        b = f1_at(threshold_at_false_reject(h8[hp], frr), t8[tp], yt)
        drops[i] = a - b
    value = f1_at(threshold_at_false_reject(h32, frr), t32, y) - f1_at(
        threshold_at_false_reject(h8, frr), t8, y
    )
    return PairedDrop(drop=_interval(value, drops), holdout=len(h32), test=len(t32))
