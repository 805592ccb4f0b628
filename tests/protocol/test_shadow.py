"""protocol/shadow.py and the challenger fields of protocol/ota.py: records survive their flat event
form, inconsistent records are refused, and messages without challengers look as they did before."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pydantic import ValidationError

from protocol.captures import CaptureOrigin
from protocol.messages import EventItem, ModelRef, decode, encode, utcnow
from protocol.ota import ChallengerReport, DesiredState, ReportedState, SlotReport
from protocol.shadow import SCORE_BINS, AgreementCell, ShadowComparison

CHAMPION = ModelRef(name="defect-cnn", version="1.0.0", sha256="a" * 64)
CHALLENGER = ModelRef(name="defect-cnn", version="1.1.0", sha256="b" * 64)


def _record(**changes: object) -> ShadowComparison:
    now = utcnow()
    data: dict[str, object] = {
        "slot": "defect",
        "champion": CHAMPION,
        "challenger": CHALLENGER,
        "started_at": now - timedelta(seconds=30),
        "ended_at": now,
        "compared": 12,
        "skipped": 3,
        "matrix": (
            AgreementCell(champion="defect", challenger="defect", frames=4),
            AgreementCell(champion="good", challenger="defect", frames=8),
        ),
        "champion_scores": (8,) + (0,) * (SCORE_BINS - 2) + (4,),
        "challenger_scores": (0,) * (SCORE_BINS - 1) + (12,),
        "champion_p50_ms": 1.5,
        "champion_p95_ms": 2.0,
        "challenger_p50_ms": 3.0,
        "challenger_p95_ms": 4.5,
        "capture_id": "cap-0123456789abcdef",
        "captured": 8,
    }
    data.update(changes)
    return ShadowComparison.model_validate(data)


def test_record_survives_its_flat_event_details_through_the_wire() -> None:
    record = _record()
    item = EventItem(
        id="00000000-0000-4000-8000-000000000001",
        seq=1,
        timestamp=utcnow(),
        level="info",
        kind="shadow_comparison",
        message="m",
        details=record.details(),
    )
    back = decode(EventItem, encode(item))
    assert ShadowComparison.from_details(back.details) == record
    assert back.details["agreement"] == pytest.approx(4 / 12)
    assert back.details["disagreements"] == 8
    assert back.details["matrix"] == "defect>defect=4;good>defect=8"


def test_every_detail_is_flat() -> None:
    assert all(isinstance(v, str | int | float | type(None)) for v in _record().details().values())


def test_a_window_with_nothing_compared_has_no_agreement() -> None:
    empty = (0,) * SCORE_BINS
    record = _record(compared=0, matrix=(), champion_scores=empty, challenger_scores=empty, capture_id=None)
    assert record.agreement is None
    assert ShadowComparison.from_details(record.details()) == record


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"compared": 13}, "matrix counts 12 frames, compared is 13"),
        (
            {
                "champion_scores": (12,) + (0,) * (SCORE_BINS - 1),
                "compared": 12,
                "challenger_scores": (1,) * 10,
            },
            "challenger_scores",
        ),
        ({"champion_scores": (12,)}, "champion_scores"),
        ({"skipped": -1}, "skipped"),
    ],
)
def test_inconsistent_records_are_refused(changes: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        _record(**changes)


def test_a_broken_matrix_in_details_is_refused_naming_it() -> None:
    details = _record().details()
    details["matrix"] = "good-defect-8"
    with pytest.raises(ValueError, match="matrix: expected champion>challenger=frames"):
        ShadowComparison.from_details(details)


def test_desired_state_without_challengers_parses_and_is_sent_as_before() -> None:
    old_payload = b'{"schema_version":1,"gateway_id":"gw-1","revision":3,"rollout_id":null,"slots":{},"issued_at":"2026-01-01T00:00:00Z"}'
    desired = decode(DesiredState, old_payload)
    assert desired.challengers == {}
    # An agent that predates challengers refuses unknown keys: the empty section never goes out.
    assert "challengers" not in json.loads(encode(desired))


def test_reported_state_of_an_older_agent_parses_and_a_slot_without_challenger_is_sent_as_before() -> None:
    old_payload = json.dumps(
        {
            "schema_version": 1,
            "gateway_id": "gw-1",
            "desired_revision": 2,
            "rollout_id": None,
            "slots": {"defect": {"active": CHAMPION.model_dump(), "phase": "committed"}},
            "timestamp": "2026-01-01T00:00:00Z",
        }
    ).encode()
    reported = decode(ReportedState, old_payload)
    assert reported.slots["defect"].challenger is None
    assert "challenger" not in json.loads(encode(reported))["slots"]["defect"]


def test_reported_challenger_round_trips() -> None:
    slot = SlotReport(
        active=CHAMPION,
        phase="committed",
        challenger=ChallengerReport(model=CHALLENGER, phase="shadowing", compared=120, skipped=4),
    )
    back = decode(SlotReport, encode(slot))
    assert back == slot
    assert back.challenger is not None
    assert back.challenger.phase == "shadowing"


def test_a_capture_of_a_shadow_window_is_an_origin_of_its_own() -> None:
    assert "shadow" in CaptureOrigin.__args__  # type: ignore[attr-defined]
