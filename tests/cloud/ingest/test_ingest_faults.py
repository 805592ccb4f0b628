"""Ingest under bad input and restarts: every bad message is parked, nothing valid is lost or doubled."""

from __future__ import annotations

import json
from collections.abc import Callable

import sqlalchemy as sa

from cloud.config import CloudSettings
from cloud.db.engine import make_engine
from cloud.db.models import DeadLetter, Result
from cloud.ingest.worker import IngestWorker
from protocol.messages import MAX_PAYLOAD_BYTES, encode
from protocol.topics import Channel, TopicSpace
from tests.support.messages import T0, batch, gateway_event, item, new_stream, telemetry
from tests.support.mqtt import Publisher
from tests.support.waiting import wait_for


def _rows(db_url: str, query: sa.Select[tuple[int]]) -> list[tuple[object, ...]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query)]
    finally:
        engine.dispose()


def test_ingest_bad_messages_go_to_dead_letters_and_valid_ones_still_land(
    start_worker: Callable[..., IngestWorker],
    publisher: Publisher,
    cloud_settings: CloudSettings,
    topic_space: TopicSpace,
) -> None:
    worker = start_worker()
    stream = new_stream()
    good = batch("gw-1", stream, [item(1), item(2)])
    wrong_version = json.loads(encode(batch("gw-1", stream, [item(3)])))
    wrong_version["schema_version"] = 99
    missing = json.loads(encode(batch("gw-1", stream, [item(4)])))
    del missing["items"][0]["model"]
    oversize = b'{"x": "' + b"a" * MAX_PAYLOAD_BYTES + b'"}'

    publisher.publish("gw-1", Channel.RESULTS, b"{not json")
    publisher.publish("gw-1", Channel.RESULTS, good)
    publisher.publish("gw-1", Channel.RESULTS, json.dumps(wrong_version).encode())
    publisher.publish("gw-1", Channel.RESULTS, json.dumps(missing).encode())
    publisher.publish("gw-1", Channel.TELEMETRY, oversize)
    publisher.publish_raw(f"{topic_space.root}/gw-1/bogus", b"{}")
    publisher.publish("gw-2", Channel.TELEMETRY, telemetry("gw-1"))  # payload claims another gateway
    publisher.publish("gw-1", Channel.RESULTS, batch("gw-1", stream, [item(3), item(4)]))

    wait_for(lambda: publisher.ack_of("gw-1", stream) == 4, what="valid items acked around bad ones")
    wait_for(lambda: sum(_dead_counts(worker).values()) == 6, what="six dead letters counted")
    assert worker.alive
    assert _dead_counts(worker) == {
        "bad_json": 1,
        "schema_version": 1,
        "invalid": 1,
        "oversize": 1,
        "unknown_topic": 1,
        "gateway_mismatch": 1,
    }
    dead = _rows(
        cloud_settings.db_url,
        sa.select(DeadLetter.reason_code, DeadLetter.topic, DeadLetter.payload_size, DeadLetter.seq).order_by(
            DeadLetter.id
        ),
    )
    by_code = {code: (topic, size, seq) for code, topic, size, seq in dead}
    assert set(by_code) == {
        "bad_json",
        "schema_version",
        "invalid",
        "oversize",
        "unknown_topic",
        "gateway_mismatch",
    }
    assert by_code["oversize"][1] == len(oversize)
    assert by_code["unknown_topic"][0] == f"{topic_space.root}/gw-1/bogus"
    assert by_code["invalid"][2] == 4  # the seq is kept when it can be read
    payload_len = _rows(
        cloud_settings.db_url,
        sa.select(sa.func.length(DeadLetter.payload)).where(DeadLetter.reason_code == "oversize"),
    )
    assert payload_len == [(64 * 1024,)]
    assert _rows(cloud_settings.db_url, sa.select(sa.func.count()).select_from(Result)) == [(4,)]


def test_a_nul_character_is_a_dead_letter_not_a_stalled_ingest(
    start_worker: Callable[..., IngestWorker], publisher: Publisher, cloud_settings: CloudSettings
) -> None:
    """The fault: text holding U+0000, which PostgreSQL cannot store. Before the wire refused it,
    the COPY failed and the retried batch stalled ingest for every gateway. The promise kept: the
    message is parked naming its field, and the valid traffic around it lands."""
    worker = start_worker()
    stream = new_stream()
    with_nul = json.loads(encode(batch("gw-1", stream, [item(2)])))
    with_nul["items"][0]["frame"] = "cam-1/frame\u0000.jpg"
    event = json.loads(encode(gateway_event("gw-1", T0, "info", "note", "ok")))
    event["items"][0]["details"] = {"text": "a\u0000b"}
    publisher.publish("gw-1", Channel.RESULTS, batch("gw-1", stream, [item(1)]))
    publisher.publish("gw-1", Channel.RESULTS, json.dumps(with_nul).encode())
    publisher.publish("gw-1", Channel.EVENTS, json.dumps(event).encode())
    publisher.publish("gw-1", Channel.RESULTS, batch("gw-1", stream, [item(2), item(3)]))

    wait_for(lambda: publisher.ack_of("gw-1", stream) == 3, what="valid items acked around the NUL ones")
    wait_for(lambda: _dead_counts(worker).get("invalid") == 2, what="both NUL messages parked")
    assert worker.alive
    reasons = [
        r for (r,) in _rows(cloud_settings.db_url, sa.select(DeadLetter.reason).order_by(DeadLetter.id))
    ]
    assert "items.0.frame: Value error, contains a NUL" in reasons[0]
    assert "items.0.details: Value error, value of 'text' contains a NUL" in reasons[1]
    assert _rows(cloud_settings.db_url, sa.select(sa.func.count()).select_from(Result)) == [(3,)]


def _dead_counts(worker: IngestWorker) -> dict[str, int]:
    counts: dict[str, int] = {}
    for metric in worker.metrics.registry.collect():
        if metric.name == "ingest_dead_letters":
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.value:
                    counts[sample.labels["reason"]] = int(sample.value)
    return counts


def test_ingest_restart_loses_nothing_and_doubles_nothing(
    start_worker: Callable[..., IngestWorker], publisher: Publisher, cloud_settings: CloudSettings
) -> None:
    stream = new_stream()
    batches = [batch("gw-9", stream, [item(b * 10 + i) for i in range(1, 11)]) for b in range(20)]
    first = start_worker()
    for b in batches[:8]:
        publisher.publish("gw-9", Channel.RESULTS, b)
    first.stop()  # mid-stream: whatever it had not committed stays unacked
    for b in batches[8:14]:
        publisher.publish("gw-9", Channel.RESULTS, b)  # the broker queues these for the session
    start_worker()
    for b in batches[14:]:
        publisher.publish("gw-9", Channel.RESULTS, b)

    # The gateway's outbox: re-send every batch above the ack until the ack covers everything.
    def resend_unacked() -> bool:
        acked = publisher.ack_of("gw-9", stream)
        if acked >= 200:
            return True
        for b in batches:
            if b.items[-1].seq > acked:
                publisher.publish("gw-9", Channel.RESULTS, b)
        return False

    wait_for(resend_unacked, timeout_s=20, what="ack of all 200 items")
    seqs = _rows(cloud_settings.db_url, sa.select(Result.seq).order_by(Result.seq))
    assert [s for (s,) in seqs] == list(range(1, 201))


def _set_db_reachable(db_url: str, reachable: bool) -> None:
    """Open or close a PostgreSQL database to new connections, cutting the existing ones."""
    name = sa.make_url(db_url).database
    admin = sa.create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if reachable else "false"}'))
        if not reachable:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
    admin.dispose()


def test_ingest_db_outage_retries_and_loses_nothing(
    start_worker: Callable[..., IngestWorker], publisher: Publisher, pg_url: str
) -> None:
    worker = start_worker(db_url=pg_url)
    stream = new_stream()
    publisher.publish("gw-1", Channel.RESULTS, batch("gw-1", stream, [item(1), item(2)]))
    wait_for(lambda: publisher.ack_of("gw-1", stream) == 2, what="ack before the outage")
    _set_db_reachable(pg_url, False)
    try:
        publisher.publish("gw-1", Channel.RESULTS, batch("gw-1", stream, [item(3), item(4)]))
        wait_for(lambda: worker.metrics.commit_failures._value.get() >= 2, what="failed commit attempts")
        assert worker.alive
        assert publisher.ack_of("gw-1", stream) == 2
    finally:
        _set_db_reachable(pg_url, True)
    wait_for(lambda: publisher.ack_of("gw-1", stream) == 4, timeout_s=15, what="ack after the DB returns")
    assert _rows(pg_url, sa.select(Result.seq).order_by(Result.seq)) == [(1,), (2,), (3,), (4,)]
