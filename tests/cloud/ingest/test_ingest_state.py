"""Birth/death, telemetry and events through the ingest service functions (no broker needed)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.models import Event, Gateway
from cloud.ingest.service import ingest_messages
from protocol.messages import utcnow
from protocol.topics import Channel, TopicSpace
from tests.support.messages import gateway_event, inbound, state, telemetry


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
    death = state("gw-1", False, 1, t + timedelta(seconds=5))
    ingest_messages(sessions, [inbound(topic_space, "gw-1", Channel.STATE, death)], topic_space)
    gw = _gateway(sessions, "gw-1")
    assert gw.online is False
    assert gw.last_state_at == t + timedelta(seconds=5)
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


def test_older_telemetry_does_not_replace_newer(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    newer = telemetry("gw-1", inferences=99)
    older = newer.model_copy(update={"timestamp": newer.timestamp - timedelta(minutes=1), "inferences": 1})
    ingest_messages(
        sessions,
        [
            inbound(topic_space, "gw-1", Channel.TELEMETRY, newer),
            inbound(topic_space, "gw-1", Channel.TELEMETRY, older),
        ],
        topic_space,
    )
    gw = _gateway(sessions, "gw-1")
    assert gw.telemetry is not None
    assert gw.telemetry["inferences"] == 99


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
