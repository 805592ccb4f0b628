"""The anomaly INT8 gate on constructed scores: pass within tolerance, refuse beyond, and say when
a test set is too small to tell (numpy only, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from domain_models.anomaly.gate import PairedScores, gate_checks, operating_point_drop, refusal
from domain_models.anomaly.stats import best_f1, f1_at, operating_point, spearman
from domain_models.common import PipelineError, threshold_at_false_reject


def _scores(goods: int, defects: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out good scores, test scores, truth: good ~ N(0, 1), defects ~ N(3, 1)."""
    rng = np.random.default_rng(seed)
    hold = rng.normal(0.0, 1.0, 400)
    test = np.r_[rng.normal(0.0, 1.0, goods), rng.normal(3.0, 1.0, defects)]
    truth = np.r_[np.zeros(goods, bool), np.ones(defects, bool)]
    return hold, test, truth


def _pair(hold: np.ndarray, test: np.ndarray, truth: np.ndarray, int8_test: np.ndarray) -> PairedScores:
    # INT8 as a monotone map of FP32 on the held-out images: what a faithful quantization gives.
    return PairedScores(hold, 1.02 * hold + 0.1, test, int8_test, truth)


def test_best_f1_is_the_maximum_over_every_threshold() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        scores = rng.integers(0, 15, 40).astype(np.float64)  # many ties
        truth = rng.random(40) < 0.4
        brute = max(f1_at(t, scores, truth) for t in np.unique(scores))
        assert best_f1(scores, truth) == pytest.approx(brute)
    assert best_f1([0.1, 0.9], [False, True]) == 1.0


def test_spearman_sees_a_monotone_map_and_a_reversal() -> None:
    x = np.linspace(0.0, 1.0, 50)
    assert spearman(x, np.exp(3 * x)) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="equal lists"):
        spearman([1.0, 2.0], [1.0])


def test_gate_passes_a_faithful_int8_on_a_large_test_set() -> None:
    hold, test, truth = _scores(1500, 1500)
    jitter = np.random.default_rng(1).normal(0.0, 0.01, len(test))
    checks = gate_checks(_pair(hold, test, truth, 1.02 * test + 0.1 + jitter), 1.0, draws=300)
    for c in checks:
        assert c.resolved, c.describe()
        assert abs(c.result.drop_points) < 1.0
        assert c.passed
    assert refusal(checks, 1.0) == "passed"


def test_gate_refuses_an_int8_that_loses_more_than_the_tolerance() -> None:
    hold, test, truth = _scores(1500, 1500)
    # Pull every defect halfway towards the good scores: separation collapses by far more than 1 point.
    damaged = np.where(truth, test - 1.5, test)
    checks = gate_checks(_pair(hold, test, truth, damaged), 1.0, draws=300)
    assert all(c.resolved for c in checks)
    assert not any(c.passed for c in checks)
    for c in checks:
        assert c.result.drop_points > 1.0
        assert "EXCEEDS" in c.describe()
    assert "drop exceeds 1.0 point(s) on image AUROC, best F1" in refusal(checks, 1.0)


def test_a_small_test_set_is_refused_as_unresolvable_with_the_images_it_needs() -> None:
    hold, test, truth = _scores(10, 20)
    checks = gate_checks(
        _pair(hold, test, truth, test + np.random.default_rng(2).normal(0, 0.3, 30)), 1.0, 300
    )
    unresolved = [c for c in checks if not c.resolved]
    assert unresolved, [c.describe() for c in checks]
    for c in unresolved:
        assert not c.passed
        goods, defects = c.images_needed()
        assert goods > 10
        assert defects > 20
        assert goods + defects >= 30 * (c.interval.half_width_points / 1.0) ** 2 - 1
        assert "CANNOT RESOLVE" in c.describe()
    reason = refusal(checks, 1.0)
    assert "cannot resolve 1.0 point(s)" in reason
    assert "good and" in reason
    assert "defective in all" in reason


def test_a_threshold_from_few_good_images_is_the_largest_and_swings() -> None:
    hold, test, truth = _scores(300, 300)
    # With fewer than 100 images a 1% threshold is the maximum good score.
    assert threshold_at_false_reject(hold[:24], 0.01) > hold[:24].max()
    few = operating_point(hold[:24], test, truth, 0.01, draws=300)
    many = operating_point(hold, test, truth, 0.01, draws=300)
    # The bootstrap cannot draw above the sample maximum, so the threshold's own interval looks
    # narrow; the false rejects it lets through on fresh good parts show the swing.
    assert few.false_reject_rate.half_width > 2 * many.false_reject_rate.half_width
    assert few.false_reject_rate.value > many.false_reject_rate.value
    assert few.f1.low <= few.f1.value <= few.f1.high


def test_operating_point_drop_is_zero_for_an_exact_monotone_map() -> None:
    hold, test, truth = _scores(200, 200)
    pair = PairedScores(hold, 2.0 * hold + 1.0, test, 2.0 * test + 1.0, truth)
    drop = operating_point_drop(pair, 0.01, draws=200)
    assert drop.drop.value == 0.0
    assert drop.drop.low == drop.drop.high == 0.0


def test_bootstrap_refuses_mismatched_or_one_class_inputs() -> None:
    hold, test, truth = _scores(20, 20)
    with pytest.raises(PipelineError, match="different images"):
        gate_checks(PairedScores(hold, hold, test, test[:-1], truth), 1.0, draws=10)
    with pytest.raises(PipelineError, match="both good and defective"):
        operating_point(hold, test[:20], truth[:20], 0.01, draws=10)
