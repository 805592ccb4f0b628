"""The model_drift alert rule: one alert per gateway while a slot's drift is confirmed (or suspected,
at level 1), closed when it clears, worded for an operator; the newer of telemetry and events decides."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.rules import evaluate_all
from cloud.alerts.schemas import AlertRuleCreate
from cloud.alerts.service import create_rule
from cloud.auth.service import Principal, Role
from cloud.db.models import Alert
from cloud.ingest.service import ingest_messages
from protocol.messages import EventBatch, Telemetry
from protocol.topics import Channel, TopicSpace
from tests.support.drift_wire import as_inbound, drift_event, drift_telemetry
from tests.support.messages import T0, inbound, state

ADMIN = Principal("token:test-admin", Role.admin)
LOOK = "warmth:up,brightness:up,score:up"  # what a new belt and lamp move, in the monitor's order


def _rule(sessions: sessionmaker[Session], threshold: float = 2) -> None:
    body = AlertRuleCreate(line="line-1", kind="model_drift", threshold=threshold)  # type: ignore[arg-type]
    with sessions.begin() as session:
        create_rule(session, body, ADMIN)


def _alerts(sessions: sessionmaker[Session]) -> list[Alert]:
    with sessions() as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def _feed(sessions: sessionmaker[Session], topics: TopicSpace, *messages: EventBatch | Telemetry) -> None:
    ingest_messages(sessions, [as_inbound(topics, m) for m in messages], topics)


@pytest.fixture
def line(sessions: sessionmaker[Session], topic_space: TopicSpace) -> sessionmaker[Session]:
    """gw-a and gw-b on line-1, gw-c on line-2, each born with a model in slot ``main``."""
    births = [
        state("gw-a", True, 1, at=T0),
        state("gw-b", True, 1, at=T0),
        state("gw-c", True, 1, at=T0, line="line-2"),
    ]
    ingest_messages(
        sessions, [inbound(topic_space, b.gateway_id, Channel.STATE, b) for b in births], topic_space
    )
    return sessions


def test_opens_one_alert_per_gateway_on_confirmed_and_closes_when_cleared(
    line: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    _rule(line)
    at = T0 + timedelta(minutes=1)
    _feed(
        line,
        topic_space,
        drift_event("gw-a", at, "suspected", slot="camera-1", moved="warmth:up"),
    )
    assert evaluate_all(line).opened == 0, "suspected is below a level-2 rule"

    confirmed = at + timedelta(seconds=40)
    _feed(
        line,
        topic_space,
        drift_event("gw-a", confirmed, "confirmed", slot="camera-1", moved=LOOK, score_ratio=3.1),
        drift_event("gw-c", confirmed, "confirmed", slot="camera-1", moved=LOOK, score_ratio=2.0),
    )
    assert evaluate_all(line).opened == 1, "gw-c is on another line"
    [alert] = _alerts(line)
    assert (alert.subject, alert.gateway_id, alert.kind, alert.value) == ("gw-a", "gw-a", "model_drift", 2.0)
    assert alert.message == (
        "model drift on line-1 (gw-a, slot camera-1, defect-patchcore 1.1.0): "
        "light/colour moved (warmth up, brightness up), scores up 3.1x"
    )

    # More reports of the same drift, and a second slot drifting: still the one alert of gw-a.
    later = confirmed + timedelta(seconds=20)
    _feed(
        line,
        topic_space,
        drift_event("gw-a", later, "confirmed", slot="camera-2", moved="sharpness:down"),
        drift_telemetry("gw-a", later + timedelta(seconds=5),
                        [("camera-1", "confirmed", ("warmth", "brightness", "score")),
                         ("camera-2", "confirmed", ("sharpness",))]),
    )  # fmt: skip
    again = evaluate_all(line)
    assert (again.opened, again.closed) == (0, 0)
    assert len(_alerts(line)) == 1

    cleared = later + timedelta(minutes=2)
    _feed(
        line,
        topic_space,
        drift_event("gw-a", cleared, "cleared", slot="camera-1"),
        drift_event("gw-a", cleared, "cleared", slot="camera-2"),
    )
    assert evaluate_all(line).closed == 1
    [alert] = _alerts(line)
    assert alert.closed_at is not None


def test_one_slot_of_two_clearing_keeps_the_gateways_alert_open(
    line: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    _rule(line)
    at = T0 + timedelta(minutes=1)
    _feed(
        line,
        topic_space,
        drift_event("gw-a", at, "confirmed", slot="camera-1", moved="brightness:down"),
        drift_event("gw-a", at, "confirmed", slot="camera-2", moved="tint:up,score:down", score_ratio=0.6),
    )  # fmt: skip
    assert evaluate_all(line).opened == 1
    assert _alerts(line)[0].message == (
        "model drift on line-1 (gw-a, slot camera-1, defect-patchcore 1.1.0): light moved (brightness down); "
        "slot camera-2 (defect-patchcore 1.1.0): colour moved (tint up), scores down 0.6x"
    )
    _feed(
        line,
        topic_space,
        drift_event("gw-a", at + timedelta(minutes=1), "cleared", slot="camera-1"),
    )
    assert (evaluate_all(line).closed, len(_alerts(line))) == (0, 1)


def test_a_newer_telemetry_sample_decides_over_an_older_event(
    line: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    """An OTA swap starts the new release on a fresh monitor with no 'cleared' event: the sample
    that follows says ok (or leaves an unwatched slot out), and the alert must close."""
    _rule(line)
    at = T0 + timedelta(minutes=1)
    _feed(line, topic_space, drift_event("gw-a", at, "confirmed", slot="main", moved="warmth:up"))
    _feed(
        line,
        topic_space,
        drift_telemetry("gw-a", at - timedelta(seconds=3), [("main", "ok", ())]),
    )
    assert evaluate_all(line).opened == 1, "an older sample does not hide a newer confirmation"

    _feed(
        line,
        topic_space,
        drift_telemetry("gw-a", at + timedelta(seconds=5), [("main", "ok", ())]),
    )
    assert evaluate_all(line).closed == 1

    # Telemetry alone (its event lost to an outbox shed) opens it too, with the names it knows.
    _feed(
        line,
        topic_space,
        drift_telemetry("gw-b", at + timedelta(seconds=9), [("main", "confirmed", ("sharpness",))]),
    )
    assert evaluate_all(line).opened == 1
    alert = _alerts(line)[-1]
    assert alert.message == "model drift on line-1 (gw-b, slot main, defect-cnn 1.0): focus moved (sharpness)"

    _feed(line, topic_space, drift_telemetry("gw-b", at + timedelta(seconds=14), []))
    assert evaluate_all(line).closed == 1, "a slot left out of a newer sample is no longer watched"


def test_a_level_1_rule_alerts_on_suspected_and_says_so(
    line: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    _rule(line, threshold=1)
    at = T0 + timedelta(minutes=1)
    _feed(
        line,
        topic_space,
        drift_event("gw-b", at, "suspected", slot="main", moved="score:up", score_ratio=1.35),
    )
    assert evaluate_all(line).opened == 1
    [alert] = _alerts(line)
    assert alert.value == 1.0
    assert (
        alert.message
        == "model drift suspected on line-1 (gw-b, slot main, defect-patchcore 1.1.0): scores up 1.4x"
    )


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"threshold": 3}, "level 2 \\(confirmed\\) or 1 \\(suspected\\)"),
        ({"threshold": 1.5}, "level 2"),
        ({"threshold": 2, "window_s": 60}, "only defect_rate rules have a window"),
    ],
)
def test_a_model_drift_rule_takes_a_drift_level_and_no_window(
    fields: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        AlertRuleCreate.model_validate({"line": "line-1", "kind": "model_drift", **fields})
    assert (
        AlertRuleCreate.model_validate({"line": "line-1", "kind": "model_drift", "threshold": 2}).window_s
        is None
    )
