"""The drift reference in the manifest and the drift field of telemetry: validated, each error named."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from protocol.drift import DriftReference, DriftSignal
from protocol.messages import SlotDrift, Telemetry, decode, encode, utcnow
from tests.support.messages import backlog_telemetry


def _signal(**overrides: Any) -> dict[str, Any]:
    return {
        "statistic": "ks",
        "edges": [0.1, 0.2, 0.3],
        "cdf": [0.2, 0.6, 1.0],
        "tolerance": 0.01,
        "threshold": 0.05,
        **overrides,
    }


def _reference(**overrides: Any) -> dict[str, Any]:
    return {
        "signals": {"brightness": _signal(), "score": _signal(statistic="bulk")},
        "window": 100,
        "step": 20,
        "confirm_after": 3,
        "clear_after": 3,
        "clear_ratio": 0.8,
        "false_alarm_rate": 0.001,
        "flagged_share": 0.01,
        "reference_frames": 212,
        "calibration_frames": 212,
        "calibration_windows": 50000,
        **overrides,
    }


def test_a_reference_round_trips_through_json() -> None:
    reference = DriftReference.model_validate(_reference())
    assert DriftReference.model_validate_json(reference.model_dump_json()) == reference
    assert reference.signals["score"].statistic == "bulk"


@pytest.mark.parametrize(
    ("signal", "message"),
    [
        (_signal(edges=[0.1, 0.1, 0.3]), "edges must be strictly increasing"),
        (_signal(cdf=[0.2, 1.0]), "cdf has 2 values for 3 edges"),
        (_signal(cdf=[0.6, 0.2, 1.0]), "cdf must not decrease"),
        (_signal(cdf=[0.2, 0.6, 0.9]), "end at 1"),
        (_signal(statistic="psi"), "statistic"),
        (_signal(threshold=0.0), "threshold"),
        (_signal(tolerance=-0.1), "tolerance"),
        (_signal(edges=[0.1]), "edges"),
    ],
)
def test_a_malformed_signal_is_refused_naming_the_problem(signal: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DriftSignal.model_validate(signal)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"step": 120}, "step 120 is longer than the window 100"),
        ({"window": 5}, "window"),
        ({"signals": {}}, "signals"),
        ({"clear_ratio": 1.5}, "clear_ratio"),
        ({"false_alarm_rate": 0.0}, "false_alarm_rate"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_malformed_reference_is_refused_naming_the_problem(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DriftReference.model_validate(_reference(**overrides))


def test_telemetry_carries_each_watched_slot_s_drift_verdict() -> None:
    verdict = SlotDrift(slot="defect", state="confirmed", moved=("warmth", "score"), ratio=20.0, frames=100)
    sample = backlog_telemetry("gw-1", 0, utcnow()).model_copy(update={"drift": (verdict,)})
    assert decode(Telemetry, encode(sample)) == sample
    older = sample.model_dump(mode="json")
    del older["drift"]  # an agent older than the field
    assert Telemetry.model_validate(older).drift == ()
    with pytest.raises(ValidationError, match="state"):
        SlotDrift.model_validate({"slot": "defect", "state": "drifting", "ratio": 1.0, "frames": 1})
