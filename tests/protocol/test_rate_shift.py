"""The defect-rate shift both health gates judge: a change counts only beyond tolerance and noise."""

from __future__ import annotations

import pytest

from protocol.ota import HEALTH_HISTORY
from protocol.rate_shift import SHIFT_Z, RateShift, parts_behind


def test_the_same_change_is_noise_on_few_parts_and_real_on_many() -> None:
    few = RateShift(before=0.086, parts_before=500, now=0.062, parts_now=500)
    many = RateShift(before=0.086, parts_before=5000, now=0.062, parts_now=5000)
    assert few.points == pytest.approx(-0.024)
    assert abs(few.z) < SHIFT_Z
    assert not few.beyond(0.01)
    assert many.z < -SHIFT_Z
    assert many.beyond(0.01)
    assert not many.beyond(0.03)  # beyond noise, but within the caller's tolerance
    assert many.describe() == "6.2% on 5000 parts vs 8.6% on 5000 before: -2.4 pts, z -4.6"


def test_either_way_counts_and_nothing_to_compare_is_no_change() -> None:
    down = RateShift(before=0.3, parts_before=2000, now=0.2, parts_now=2000)
    up = RateShift(before=0.2, parts_before=2000, now=0.3, parts_now=2000)
    assert down.z == pytest.approx(-up.z)
    assert down.beyond(0.05)
    assert up.beyond(0.05)
    assert RateShift(before=0.1, parts_before=0, now=0.9, parts_now=100).z == 0.0
    nothing_flagged = RateShift(before=0.0, parts_before=100, now=0.0, parts_now=100)
    assert nothing_flagged.z == 0.0


def test_a_reported_rate_stands_on_the_latest_history_at_most() -> None:
    assert parts_behind(0) == 0
    assert parts_behind(1234) == 1234
    assert parts_behind(HEALTH_HISTORY * 5) == HEALTH_HISTORY
    assert parts_behind(-1) == 0
