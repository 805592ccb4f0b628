"""The bulk insert paths of ingest: direct COPY for new seqs, staging for re-sends, the ack walk.

Runs on whichever database ``--dburl`` picks; on PostgreSQL each case below takes a different
path through ``cloud.ingest.bulk`` (direct COPY, staging, direct COPY rolled back to staging).
"""

from __future__ import annotations

import logging
import threading
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.models import Result
from cloud.ingest import service
from cloud.ingest.rows import COPY_COLUMNS
from cloud.ingest.service import StoreOutcome, StreamKey, ingest_messages
from protocol.messages import ParcelOutput, ResultBatch, ResultItem
from protocol.topics import Channel, TopicSpace
from tests.support.messages import batch, inbound, item, new_stream


def _ingest(
    sessions: sessionmaker[Session], topics: TopicSpace, *batches: ResultBatch
) -> tuple[StoreOutcome, dict[StreamKey, int]]:
    """All ``batches`` in one drain (one transaction), as the worker would commit them."""
    msgs = [inbound(topics, b.gateway_id, Channel.RESULTS, b) for b in batches]
    return ingest_messages(sessions, msgs, topics)


def _stored(sessions: sessionmaker[Session], stream: str) -> list[tuple[int, uuid.UUID]]:
    with sessions() as session:
        query = sa.select(Result.seq, Result.id).where(Result.stream == stream).order_by(Result.seq)
        return [(int(seq), rid) for seq, rid in session.execute(query).all()]


def test_copy_columns_are_exactly_the_results_columns() -> None:
    assert sorted(COPY_COLUMNS) == sorted(c.name for c in Result.__table__.columns)


def test_replaying_a_batch_twice_stores_it_once(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    stream = new_stream()
    first = batch("gw-b1", stream, [item(s) for s in range(1, 21)])
    outcome, acks = _ingest(sessions, topic_space, first)
    assert (outcome.results_inserted, outcome.results_duplicate) == (20, 0)
    assert acks[("gw-b1", stream)] == 20

    outcome, acks = _ingest(sessions, topic_space, first)
    assert (outcome.results_inserted, outcome.results_duplicate) == (0, 20)
    assert [seq for seq, _ in _stored(sessions, stream)] == list(range(1, 21))
    assert acks[("gw-b1", stream)] == 20


def test_a_drain_holding_a_batch_and_its_resend_stores_each_item_once(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    stream = new_stream()
    first = batch("gw-b2", stream, [item(s) for s in range(1, 6)])
    outcome, acks = _ingest(sessions, topic_space, first, first)
    assert (outcome.results_inserted, outcome.results_duplicate) == (5, 5)
    assert [seq for seq, _ in _stored(sessions, stream)] == [1, 2, 3, 4, 5]
    assert acks[("gw-b2", stream)] == 5


def test_mixing_old_and_new_seqs_inserts_only_the_new(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    stream, fresh = new_stream(), new_stream()
    items = [item(s) for s in range(1, 16)]
    _ingest(sessions, topic_space, batch("gw-b3", stream, items[:10]))
    # One drain: a re-send overlapping what is stored (5..15) and a stream never seen before.
    outcome, acks = _ingest(
        sessions,
        topic_space,
        batch("gw-b3", stream, items[4:]),
        batch("gw-b3", fresh, [item(s) for s in range(1, 4)]),
    )
    assert (outcome.results_inserted, outcome.results_duplicate) == (8, 6)
    assert _stored(sessions, stream) == [(i.seq, i.id) for i in items]
    assert [seq for seq, _ in _stored(sessions, fresh)] == [1, 2, 3]
    assert acks == {("gw-b3", stream): 15, ("gw-b3", fresh): 3}


def test_a_stored_id_arriving_under_new_seqs_is_not_doubled(
    sessions: sessionmaker[Session], topic_space: TopicSpace, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The seq probe sees nothing stored in the new stream, so PostgreSQL tries the direct COPY;
    # the id is stored already, so it must fall back to the staging insert in the same transaction.
    caplog.set_level(logging.INFO, logger="cloud.ingest.bulk")
    old_stream, new = new_stream(), new_stream()
    reused = item(1)
    _ingest(sessions, topic_space, batch("gw-b4", old_stream, [reused]))
    moved = reused.model_copy(update={"seq": 2})
    outcome, acks = _ingest(sessions, topic_space, batch("gw-b4", new, [item(1), moved, item(3)]))
    assert (outcome.results_inserted, outcome.results_duplicate) == (2, 1)
    assert [seq for seq, _ in _stored(sessions, new)] == [1, 3]
    assert _stored(sessions, old_stream) == [(1, reused.id)]
    assert acks[("gw-b4", new)] == 1  # seq 2 of the new stream is not stored: the ack waits
    if db_url.startswith("postgresql"):
        assert "inserting through staging" in caplog.text, "the direct COPY should have been rolled back"


def test_special_characters_survive_the_copy_format(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    stream = new_stream()
    awkward = 'tab\there, newline\nthere, cr\r, backslash \\N and \\, quote " and ü'
    base = item(1)
    parcel = ParcelOutput(label="lane-1", score=0.5, track_id=3, barcode=awkward, symbology="code128")
    special = ResultItem.model_validate(
        {**base.model_dump(), "frame": awkward, "output": parcel.model_dump()}
    )
    _ingest(sessions, topic_space, batch("gw-b5", stream, [special]))
    with sessions() as session:
        row = session.scalars(sa.select(Result).where(Result.stream == stream)).one()
    assert row.frame == awkward
    assert row.output == parcel.model_dump(mode="json")
    assert (row.task, row.label, row.is_defect, row.score) == ("parcel", "lane-1", None, 0.5)
    assert row.captured_at == base.captured_at


@pytest.mark.parametrize(
    ("seqs", "expected"),
    [
        (list(range(1, 11)), 10),  # several windows, all stored
        ([*range(1, 7), *range(8, 11)], 6),  # a gap inside the second window
        ([1, 2, 3, 5], 3),  # a gap right at a window's end
        ([2, 3, 4], 0),  # the first seq is missing
    ],
)
def test_contiguous_ack_across_walk_windows(
    sessions: sessionmaker[Session],
    topic_space: TopicSpace,
    monkeypatch: pytest.MonkeyPatch,
    seqs: list[int],
    expected: int,
) -> None:
    monkeypatch.setattr(service, "ACK_WALK_PAGE", 3)
    stream = new_stream()
    _, acks = _ingest(sessions, topic_space, batch("gw-b6", stream, [item(s) for s in seqs]))
    assert acks[("gw-b6", stream)] == expected


def test_two_ids_with_one_seq_do_not_look_like_a_gap(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    stream = new_stream()
    _ingest(sessions, topic_space, batch("gw-b7", stream, [item(1), item(2)]))
    # A second id under seq 2 (another outbox incarnation reusing the stream, say) and seq 3.
    _, acks = _ingest(sessions, topic_space, batch("gw-b7", stream, [item(2), item(3)]))
    assert acks[("gw-b7", stream)] == 3


def test_two_writers_storing_the_same_batches_at_once_store_each_item_once(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    # Two workers of a shared subscription, each handed every batch of one gateway (a re-send
    # racing the original), in opposite orders: they insert side by side, then meet on the ids.
    stream = new_stream()
    batches = [
        batch("gw-b8", stream, [item(s) for s in range(first, first + 20)]) for first in range(1, 201, 20)
    ]
    outcomes: list[StoreOutcome] = []
    errors: list[BaseException] = []

    def writer(order: list[ResultBatch]) -> None:
        try:
            for b in order:
                outcomes.append(_ingest_retrying(sessions, topic_space, b))
        except BaseException as exc:  # reported below, a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(o,)) for o in (batches, batches[::-1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(o.results_inserted for o in outcomes) == 200
    assert sum(o.results_duplicate for o in outcomes) == 200
    stored = _stored(sessions, stream)
    assert [seq for seq, _ in stored] == list(range(1, 201))
    assert {rid for _, rid in stored} == {i.id for b in batches for i in b.items}
    _, acks = _ingest(sessions, topic_space, batches[0])
    assert acks[("gw-b8", stream)] == 200


def _ingest_retrying(sessions: sessionmaker[Session], topics: TopicSpace, b: ResultBatch) -> StoreOutcome:
    """One batch per transaction, retried on a database error as the worker does."""
    for _ in range(20):
        try:
            return _ingest(sessions, topics, b)[0]
        except sa.exc.DBAPIError:
            continue
    raise AssertionError(f"batch starting at seq {b.items[0].seq} never committed")
