"""Birth/death, telemetry and events through the ingest service functions (no broker needed)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.models import Event, Gateway, GatewayReported
from cloud.ingest.decode import Inbound
from cloud.ingest.service import ingest_messages
from protocol.messages import utcnow
from protocol.ota import SlotHealth
from protocol.topics import Channel, TopicSpace
from tests.support.messages import gateway_event, inbound, reported, state, telemetry


def _gateway(sessions: sessionmaker[Session], gateway_id: str) -> Gateway:
    with sessions() as session:
        gw = session.get(Gateway, gateway_id)
        assert gw is not None, f"gateway {gateway_id} not stored"
        return gw


def test_birth_then_death_marks_offline(sessions: sessionmaker[Session], topic_space: TopicSpace) -> None:
    t = utcnow()
    ingest_messages(
        sessions, [inbound(topic_space, "gw-1", Channel.STATE, state("gw-1", True, 1, t))], topic_space
    )
    assert _gateway(sessions, "gw-1").online is True
    death = inbound(topic_space, "gw-1", Channel.STATE, state("gw-1", False, 1, t + timedelta(seconds=5)))
    ingest_messages(sessions, [death], topic_space)
    gw = _gateway(sessions, "gw-1")
    assert gw.online is False
    assert gw.last_state_at == death.received_at, "the cloud's receive time, not the gateway's clock"
    assert gw.models[0]["slot"] == "main"  # the last known models stay visible


def test_stale_death_of_older_session_keeps_new_session_online(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    t = utcnow()
    birth2 = state("gw-1", True, 2, t)
    # The last-will of session 1 arrives after session 2's birth (and even carries a later time).
    stale_death = state("gw-1", False, 1, t + timedelta(seconds=30))
    outcome, _ = ingest_messages(
        sessions,
        [
            inbound(topic_space, "gw-1", Channel.STATE, birth2),
            inbound(topic_space, "gw-1", Channel.STATE, stale_death),
        ],
        topic_space,
    )
    assert outcome.stale_states == 1
    gw = _gateway(sessions, "gw-1")
    assert (gw.online, gw.session) == (True, 2)
    # Also across batches (a separate transaction).
    ingest_messages(sessions, [inbound(topic_space, "gw-1", Channel.STATE, stale_death)], topic_space)
    assert _gateway(sessions, "gw-1").online is True
    # The death of the current session does count.
    ingest_messages(
        sessions,
        [inbound(topic_space, "gw-1", Channel.STATE, state("gw-1", False, 2, t + timedelta(seconds=40)))],
        topic_space,
    )
    assert _gateway(sessions, "gw-1").online is False


def test_telemetry_is_ordered_by_the_clouds_receive_time(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    """The fault: NTP sets the gateway's clock back 10 minutes. Its next sample still replaces the
    last; a sample received earlier but committed later (two workers) does not."""
    first = telemetry("gw-1", inferences=10)
    set_back = first.model_copy(
        update={"timestamp": first.timestamp - timedelta(minutes=10), "inferences": 20}
    )
    t = utcnow()
    ingest_messages(sessions, [_at(inbound(topic_space, "gw-1", Channel.TELEMETRY, first), t)], topic_space)
    ingest_messages(
        sessions,
        [_at(inbound(topic_space, "gw-1", Channel.TELEMETRY, set_back), t + timedelta(seconds=5))],
        topic_space,
    )
    gw = _gateway(sessions, "gw-1")
    assert gw.telemetry is not None
    assert (gw.telemetry["inferences"], gw.telemetry_at) == (20, t + timedelta(seconds=5))
    late = first.model_copy(update={"inferences": 15})
    ingest_messages(
        sessions,
        [_at(inbound(topic_space, "gw-1", Channel.TELEMETRY, late), t + timedelta(seconds=2))],
        topic_space,
    )
    assert _gateway(sessions, "gw-1").telemetry["inferences"] == 20  # type: ignore[index]


def test_an_unclean_disconnect_marks_the_gateway_offline_though_its_will_is_older(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    """The fault: the agent's last-will is composed when it starts, so the death the broker sends
    on an unclean disconnect carries an earlier time than the session's birth. Still offline."""
    started = utcnow()
    will = state("gw-1", False, 1, started)
    birth = state("gw-1", True, 1, started + timedelta(seconds=3))
    ingest_messages(sessions, [inbound(topic_space, "gw-1", Channel.STATE, birth)], topic_space)
    ingest_messages(sessions, [inbound(topic_space, "gw-1", Channel.STATE, will)], topic_space)
    assert _gateway(sessions, "gw-1").online is False


def test_a_gateway_ten_minutes_off_still_updates_its_reported_state(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    """The fault: the gateway's clock runs 10 minutes ahead, then is corrected. Its reports after
    the correction (earlier by its clock) replace the ones before."""
    now = utcnow()
    health = SlotHealth(inferences=10, errors=0)
    ahead = reported("gw-1", "1.0", 1, health).model_copy(update={"timestamp": now + timedelta(minutes=10)})
    corrected = reported("gw-1", "1.1", 2, health).model_copy(update={"timestamp": now})
    for report in (ahead, corrected):
        ingest_messages(sessions, [inbound(topic_space, "gw-1", Channel.REPORTED, report)], topic_space)
    with sessions() as session:
        row = session.get(GatewayReported, "gw-1")
        assert row is not None
        assert row.desired_revision == 2


def _at(message: Inbound, received_at: datetime) -> Inbound:
    return replace(message, received_at=received_at)


def test_events_are_stored(sessions: sessionmaker[Session], topic_space: TopicSpace) -> None:
    ev = gateway_event(
        gateway_id="gw-1",
        timestamp=utcnow(),
        level="warning",
        kind="outbox_shed",
        message="shed 3",
        details={"n": 3},
    )
    ingest_messages(sessions, [inbound(topic_space, "gw-1", Channel.EVENTS, ev)], topic_space)
    with sessions() as session:
        rows = session.scalars(sa.select(Event)).all()
    assert [(e.kind, e.level, e.details) for e in rows] == [("outbox_shed", "warning", {"n": 3})]


def test_ack_channel_is_ignored_not_dead_lettered(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    outcome, acks = ingest_messages(sessions, [inbound(topic_space, "gw-1", Channel.ACK, b"{}")], topic_space)
    assert (outcome.ignored, outcome.rejected, acks) == (1, [], {})
