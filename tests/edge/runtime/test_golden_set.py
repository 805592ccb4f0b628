"""The golden-set figures a gateway judges a release by (edge_agent.runtime.golden)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.frames import Frame
from edge_agent.runtime.golden import GoldenSetError, compare, golden_value, spearman
from edge_agent.runtime.model import Prediction
from protocol.manifest import GoldenReference, GoldenSet
from protocol.messages import ClassificationOutput, DefectOutput, utcnow

FRAME = Frame("t", "t", utcnow(), np.zeros((1, 1, 3), np.uint8))


def _defect(p_defect: float) -> Prediction:
    is_defect = p_defect >= 0.5
    output = DefectOutput(
        label="anomaly" if is_defect else "good",
        is_defect=is_defect,
        score=p_defect if is_defect else 1.0 - p_defect,
    )
    return Prediction(FRAME, output, 1.0)


def _golden(values: list[float], decisive: bool = True, **tolerances: float) -> GoldenSet:
    return GoldenSet(
        inputs="set.npz",
        reference=tuple(
            GoldenReference(
                label="anomaly" if v >= 0.5 else "good", value=v, decisive=decisive, build_value=v
            )
            for v in values
        ),
        reference_model="m 1.0.0",
        **tolerances,  # type: ignore[arg-type]
    )


VALUES = [0.05, 0.2, 0.35, 0.45, 0.55, 0.7, 0.9, 0.97]


def test_defect_value_is_the_defect_probability_whichever_label_won() -> None:
    assert golden_value(_defect(0.8)) == pytest.approx(0.8)
    assert golden_value(_defect(0.2)) == pytest.approx(0.2)
    other = Prediction(FRAME, ClassificationOutput(label="a", score=0.7), 1.0)
    assert golden_value(other) == pytest.approx(0.7)


def test_same_outputs_pass_with_perfect_figures() -> None:
    figures = compare(_golden(VALUES), [_defect(v) for v in VALUES])
    assert figures.passed
    assert figures.rank_correlation == pytest.approx(1.0)
    assert (figures.disagreements, figures.decisive) == (0, 8)
    assert figures.build_drift == pytest.approx(0.0, abs=1e-12)


def test_scores_in_another_order_fail_on_rank_correlation() -> None:
    shuffled = [VALUES[i] for i in (1, 0, 3, 2, 5, 4, 7, 6)]  # labels unchanged, order scrambled in pairs
    figures = compare(_golden(VALUES, max_build_drift=1.0), [_defect(v) for v in shuffled])
    assert figures.disagreements == 0
    assert figures.rank_correlation < 0.95
    assert not figures.passed
    assert "needs >= 0.95" in figures.describe()


def test_a_decisive_label_flip_fails_but_an_undecisive_one_does_not() -> None:
    moved = [*VALUES[:3], 0.52, *VALUES[4:]]  # 0.45 -> 0.52: good becomes anomaly, ranks unchanged
    loose = {"max_build_drift": 1.0}
    assert compare(_golden(VALUES, **loose), [_defect(v) for v in moved]).disagreements == 1
    assert not compare(_golden(VALUES, **loose), [_defect(v) for v in moved]).passed
    assert compare(_golden(VALUES, decisive=False, **loose), [_defect(v) for v in moved]).passed


def test_scores_drifting_from_the_build_fail_even_in_the_same_order() -> None:
    """A kernel that computes a little differently keeps order and labels but moves every score."""
    drifted = [v + 0.03 for v in VALUES[:4]] + [v - 0.03 for v in VALUES[4:]]
    figures = compare(_golden(VALUES), [_defect(v) for v in drifted])
    assert figures.rank_correlation == pytest.approx(1.0)
    assert figures.build_drift == pytest.approx(0.03)
    assert not figures.passed


def test_output_count_must_match_the_reference() -> None:
    with pytest.raises(GoldenSetError, match="7 outputs for 8 golden references"):
        compare(_golden(VALUES), [_defect(v) for v in VALUES[:7]])


@given(st.lists(st.floats(-1e6, 1e6), min_size=3, max_size=40))
def test_spearman_of_a_list_with_itself_and_its_reverse(values: list[float]) -> None:
    rho = spearman(values, values)
    assert not math.isnan(rho)
    assert rho == pytest.approx(1.0)
    if len(set(values)) == len(values):  # ties make the reverse order less than perfectly opposite
        assert spearman(sorted(values), sorted(values, reverse=True)) == pytest.approx(-1.0)
