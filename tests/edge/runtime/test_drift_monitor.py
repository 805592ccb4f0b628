"""The drift monitor's verdict: a rolling window, suspected -> confirmed -> cleared with hysteresis,
and a burst of defects told apart from drift."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from edge_agent.runtime.drift_monitor import DriftEvaluation, DriftMonitor
from protocol.drift import DriftReference, DriftSignal

# A uniform reference on [0, 1] without dead band. The "normal" stream below puts every value of a
# grid of WINDOW points in each WINDOW consecutive frames, so an unchanged window matches the
# reference to within half a grid step, and a window with k of its values moved above 1 has a ks
# statistic of exactly k / WINDOW: every verdict below is exact, none a matter of luck.
EDGES = tuple(float(e) for e in np.round(np.linspace(0.0, 1.0, 21), 4))
WINDOW, STEP = 20, 5
MOVED = 5.0  # above every reference value


def _reference(**overrides: Any) -> DriftReference:
    uniform = DriftSignal(statistic="ks", edges=EDGES, cdf=EDGES, tolerance=0.0, threshold=0.2)
    data: dict[str, Any] = {
        "signals": {"brightness": uniform},
        "window": WINDOW,
        "step": STEP,
        "confirm_after": 3,
        "clear_after": 2,
        "clear_ratio": 0.5,
        "false_alarm_rate": 0.001,
        "flagged_share": 0.01,
        "reference_frames": 200,
        "calibration_frames": 200,
        "calibration_windows": 1000,
    }
    data.update(overrides)
    return DriftReference.model_validate(data)


def _feed(
    monitor: DriftMonitor, values: list[float], flagged: bool = False
) -> list[tuple[int, DriftEvaluation]]:
    """Feed brightness values; return (frames fed so far, evaluation) for every transition."""
    transitions = []
    for value in values:
        evaluation = monitor.add({"brightness": value}, flagged)
        if evaluation is not None and evaluation.transition is not None:
            transitions.append((evaluation.frames, evaluation))
    return transitions


def _normal(n: int) -> list[float]:
    """Each WINDOW consecutive values hold every point (k + 0.5) / WINDOW once (7 and 20 are coprime)."""
    return [((i * 7) % WINDOW + 0.5) / WINDOW for i in range(n)]


def _moved(positions: set[int], n: int) -> list[float]:
    """The normal stream with the values at ``positions`` of every WINDOW frames moved above 1."""
    return [MOVED if i % WINDOW in positions else v for i, v in enumerate(_normal(n))]


def test_nothing_is_judged_before_the_window_is_full() -> None:
    monitor = DriftMonitor(_reference())
    assert _feed(monitor, [MOVED] * (WINDOW - 1)) == []
    assert monitor.last is None
    status = monitor.status("defect")
    assert (status.state, status.frames, status.moved) == ("ok", WINDOW - 1, ())


def test_an_unchanged_line_stays_ok() -> None:
    monitor = DriftMonitor(_reference())
    assert _feed(monitor, _normal(400)) == []
    assert monitor.last is not None
    assert monitor.last.state == "ok"


def test_a_change_is_suspected_then_confirmed_then_cleared_when_the_line_returns() -> None:
    monitor = DriftMonitor(_reference())
    seen = _feed(monitor, _normal(WINDOW))
    seen += _feed(monitor, [MOVED] * 40)  # the look changes at frame 21
    seen += _feed(monitor, _normal(60))  # and comes back at frame 61
    assert [e.transition for _, e in seen] == ["suspected", "confirmed", "cleared"]
    (suspected_at, suspected), (confirmed_at, confirmed), (cleared_at, _) = seen
    # Over 0.2 once 5 changed frames are in (the evaluation at frame 25); confirmed two steps later.
    assert suspected_at == 25
    assert suspected.state == "suspected"
    assert confirmed_at == suspected_at + 2 * STEP
    assert confirmed.moved == ("brightness",)
    assert confirmed.readings["brightness"].up
    assert confirmed.cause == "look"
    # The window is free of changed frames at frame 80; the second calm evaluation clears.
    assert cleared_at == 85
    assert monitor.status("defect").state == "ok"


def test_a_statistic_between_calm_and_its_threshold_neither_confirms_nor_clears() -> None:
    # confirm_after 6: the 5 changed frames that raise the suspicion stay over the threshold for
    # 4 evaluations; after them every window holds 3 changed frames (0.15: over calm, under 0.2).
    monitor = DriftMonitor(_reference(confirm_after=6))
    _feed(monitor, _normal(WINDOW))
    assert [e.transition for _, e in _feed(monitor, [MOVED] * 5)] == ["suspected"]
    assert _feed(monitor, _moved({10, 11, 12}, 200)) == []
    last = monitor.last
    assert last is not None
    assert last.readings["brightness"].statistic == pytest.approx(0.15)
    assert monitor.status("defect").state == "suspected"


def test_confirm_after_one_confirms_at_the_first_evaluation_over_the_threshold() -> None:
    monitor = DriftMonitor(_reference(confirm_after=1))
    seen = _feed(monitor, _normal(WINDOW) + [MOVED] * 10)
    assert [e.transition for _, e in seen] == ["confirmed"]


def _score_reference() -> DriftReference:
    reference = _reference()
    score = reference.signals["brightness"].model_copy(update={"statistic": "bulk"})
    return reference.model_copy(update={"signals": {"score": score}})


def test_a_burst_of_defects_moves_the_top_of_the_scores_and_is_not_drift() -> None:
    monitor = DriftMonitor(_score_reference())
    scores = _normal(WINDOW) + _moved({i for i in range(WINDOW) if i % 5 < 2}, 300)  # 40% defective
    flagged = [False] * WINDOW + [score == MOVED for score in scores[WINDOW:]]
    seen = [
        e
        for e in (monitor.add({"score": s}, f) for s, f in zip(scores, flagged, strict=True))
        if e and e.transition
    ]
    assert seen == []
    last = monitor.last
    assert last is not None
    # The lower decile rose a little (0.12: the burst took the lowest grid point), far less than
    # the 0.4 a plain ks statistic of these windows shows.
    assert last.readings["score"].statistic < 0.15
    assert last.flagged_share == pytest.approx(0.4)  # the burst is visible, and said, not alarmed on
    assert "40% flagged" in last.describe()


def test_scores_of_all_parts_moving_is_drift_caused_by_scores() -> None:
    monitor = DriftMonitor(_score_reference())
    seen = [e for e in (monitor.add({"score": s + 1.0}, False) for s in _normal(60)) if e and e.transition]
    assert [e.transition for e in seen] == ["suspected", "confirmed"]
    assert seen[-1].cause == "scores"
    assert seen[-1].readings["score"].up


def test_the_event_details_carry_the_statistics_thresholds_window_and_what_moved() -> None:
    monitor = DriftMonitor(_reference())
    (_, evaluation), *_ = _feed(monitor, _normal(WINDOW) + [MOVED] * 5)
    details = evaluation.details()
    assert details["transition"] == "suspected"
    assert details["moved"] == "brightness:up"
    assert details["cause"] == "look"
    assert details["window"] == WINDOW
    assert details["brightness_threshold"] == 0.2
    assert details["brightness_statistic"] == pytest.approx(0.25)
    assert details["test"] == "ks+bulk"
    assert "score_median" not in details  # this reference watches no score


def test_a_signal_this_agent_does_not_know_is_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reference = _reference()
    known = reference.signals["brightness"]
    newer = reference.model_copy(update={"signals": {"brightness": known, "glare": known}})
    with caplog.at_level(logging.WARNING):
        monitor = DriftMonitor(newer)
    assert "glare" in caplog.text
    assert _feed(monitor, _normal(WINDOW)) == []  # frames need only the known signal
    with pytest.raises(ValueError, match="no signal this agent knows"):
        DriftMonitor(reference.model_copy(update={"signals": {"glare": known}}))


def test_a_frame_without_a_watched_signal_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"without signal\(s\) \['brightness'\]"):
        DriftMonitor(_reference()).add({"score": 0.5}, False)
