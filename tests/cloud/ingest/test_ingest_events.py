"""Gateway events through the outbox's event stream: stored once by id, acked contiguously per
stream."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.db.models import DeadLetter, Event, Result
from cloud.ingest.service import ingest_messages
from cloud.ingest.worker import IngestWorker
from protocol.messages import EventBatch, EventItem
from protocol.topics import Channel, TopicSpace
from tests.support.messages import T0, batch, inbound, item, new_stream
from tests.support.mqtt import Publisher
from tests.support.waiting import wait_for


def event_item(seq: int, kind: str = "ota", replayed: bool = False) -> EventItem:
    """One event of a stream, ``seq`` seconds after T0."""
    return EventItem(
        id=uuid.uuid4(),
        seq=seq,
        timestamp=T0 + timedelta(seconds=seq),
        level="error",
        kind=kind,
        message=f"event {seq}",
        details={"slot": "main", "seq_copy": seq},
        replayed=replayed,
    )


def event_batch(
    gateway_id: str, stream: str, items: list[EventItem], oldest_held_seq: int | None = None
) -> EventBatch:
    """An event batch as the publisher sends it."""
    return EventBatch(
        gateway_id=gateway_id,
        stream=stream,
        sent_at=datetime.now(UTC),
        items=tuple(items),
        oldest_held_seq=oldest_held_seq,
    )


def _events(db_url: str) -> list[tuple[str, uuid.UUID | None, str | None, int | None]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(Event.message, Event.event_id, Event.stream, Event.seq).order_by(Event.id)
            )
            return [(r[0], r[1], r[2], r[3]) for r in rows]
    finally:
        engine.dispose()


def test_resent_event_batch_is_stored_once_and_acked_contiguously(
    start_worker: Callable[..., IngestWorker], publisher: Publisher, cloud_settings: CloudSettings
) -> None:
    worker = start_worker()
    events, results = new_stream(), new_stream()
    first = [event_item(1), event_item(2), event_item(3)]
    publisher.publish("gw-ev", Channel.EVENTS, event_batch("gw-ev", events, first, oldest_held_seq=1))
    wait_for(lambda: publisher.ack_of("gw-ev", events) == 3, what="event ack 3")
    assert [(m, s) for m, _i, _s, s in _events(cloud_settings.db_url)] == [
        ("event 1", 1),
        ("event 2", 2),
        ("event 3", 3),
    ]

    # The gateway missed the ack and re-sends (same ids, flagged replayed) with one new event.
    acks_before = worker.metrics.acks_published._value.get()
    again = [i.model_copy(update={"replayed": True}) for i in first] + [event_item(4)]
    publisher.publish("gw-ev", Channel.EVENTS, event_batch("gw-ev", events, again, oldest_held_seq=1))
    wait_for(lambda: publisher.ack_of("gw-ev", events) == 4, what="event ack 4")
    wait_for(lambda: worker.metrics.acks_published._value.get() > acks_before, what="ack after re-send")
    stored = _events(cloud_settings.db_url)
    assert [s for *_rest, s in stored] == [1, 2, 3, 4]
    assert {i for _m, i, _s, _q in stored} == {i.id for i in again}
    assert {s for _m, _i, s, _q in stored} == {events}

    # A gap (seq 5 not stored) holds the ack; a batch saying the gateway holds nothing below 6
    # (5 was shed) moves it on.
    publisher.publish("gw-ev", Channel.EVENTS, event_batch("gw-ev", events, [event_item(6)]))
    wait_for(lambda: len(_events(cloud_settings.db_url)) == 5, what="seq 6 stored")
    wait_for(lambda: worker.metrics.acks_published._value.get() >= acks_before + 2, what="ack after seq 6")
    assert publisher.ack_of("gw-ev", events) == 4
    publisher.publish(
        "gw-ev", Channel.EVENTS, event_batch("gw-ev", events, [event_item(7)], oldest_held_seq=6)
    )
    wait_for(lambda: publisher.ack_of("gw-ev", events) == 7, what="ack over the shed seq 5")

    # The same gateway's results stream is acked from the results table, apart from the events.
    publisher.publish("gw-ev", Channel.RESULTS, batch("gw-ev", results, [item(1), item(2)]))
    wait_for(lambda: publisher.ack_of("gw-ev", results) == 2, what="results ack 2")
    assert publisher.ack_of("gw-ev", events) == 7


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_event_batch_service_is_idempotent_on_both_dialects(
    dialect: str, pg_url: str, sqlite_url: str, topic_space: TopicSpace
) -> None:
    url = pg_url if dialect == "postgresql" else sqlite_url
    migrate(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    stream = new_stream()
    items = [event_item(1), event_item(2)]
    message = inbound(topic_space, "gw-s", Channel.EVENTS, event_batch("gw-s", stream, items))
    # Twice in one drain (a duplicate delivery) and once more later (a re-send).
    _outcome, acks = ingest_messages(sessions, [message, message], topic_space)
    assert acks == {("gw-s", stream): 2}
    _outcome, acks = ingest_messages(sessions, [message], topic_space)
    assert acks == {("gw-s", stream): 2}
    assert [s for *_rest, s in _events(url)] == [1, 2]
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Result)) == 0
    engine.dispose()


def test_bad_event_batch_is_a_dead_letter_naming_the_field(sqlite_url: str, topic_space: TopicSpace) -> None:
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    good = event_batch("gw-b", new_stream(), [event_item(1)])
    raw = good.model_dump(mode="json")
    raw["items"][0]["seq"] = 0

    ingest_messages(
        sessions, [inbound(topic_space, "gw-b", Channel.EVENTS, json.dumps(raw).encode())], topic_space
    )
    with sessions() as session:
        letter = session.scalars(sa.select(DeadLetter)).one()
    assert letter.reason_code == "invalid"
    assert "items.0.seq" in letter.reason
    assert letter.seq == 0
    assert _events(sqlite_url) == []
    engine.dispose()
