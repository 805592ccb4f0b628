"""Ingest end to end on the real Mosquitto and database: idempotent storage and cumulative acks."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import sqlalchemy as sa

from cloud.config import CloudSettings
from cloud.db.engine import make_engine
from cloud.db.models import Gateway, GatewayStream, Result
from cloud.ingest.worker import IngestWorker
from protocol.topics import Channel
from tests.support.messages import batch, item, new_stream, state, telemetry
from tests.support.mqtt import Publisher
from tests.support.waiting import wait_for


def _count(db_url: str, *where: sa.ColumnElement[bool]) -> int:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(Result).where(*where)) or 0)
    finally:
        engine.dispose()


def test_ingest_stores_batches_once_and_acks_contiguous_seq(
    start_worker: Callable[..., IngestWorker], publisher: Publisher, cloud_settings: CloudSettings
) -> None:
    worker = start_worker()
    stream = new_stream()
    first = batch("gw-1", stream, [item(s) for s in range(1, 11)])
    second = batch("gw-1", stream, [item(s) for s in range(11, 21)])
    publisher.publish("gw-1", Channel.RESULTS, first)
    publisher.publish("gw-1", Channel.RESULTS, second)
    wait_for(lambda: publisher.ack_of("gw-1", stream) == 20, what="ack of seq 20")
    assert _count(cloud_settings.db_url) == 20

    # A redelivery (the gateway did not see the ack in time) must not double anything.
    publisher.publish("gw-1", Channel.RESULTS, first)
    wait_for(lambda: worker.metrics.results_duplicate._value.get() == 10, what="duplicates counted")
    assert _count(cloud_settings.db_url) == 20
    assert publisher.ack_of("gw-1", stream) == 20
    assert worker.metrics.results_inserted._value.get() == 20


def test_ingest_ack_waits_for_gap_then_jumps_when_filled(
    start_worker: Callable[..., IngestWorker], publisher: Publisher, cloud_settings: CloudSettings
) -> None:
    worker = start_worker()
    stream = new_stream()
    publisher.publish("gw-2", Channel.RESULTS, batch("gw-2", stream, [item(s) for s in range(1, 6)]))
    wait_for(lambda: publisher.ack_of("gw-2", stream) == 5, what="ack 5")
    # Seqs 6..10 are missing: 11..15 commit but the cumulative ack must stay at 5.
    publisher.publish("gw-2", Channel.RESULTS, batch("gw-2", stream, [item(s) for s in range(11, 16)]))
    wait_for(lambda: worker.metrics.results_inserted._value.get() == 10, what="second batch stored")
    wait_for(lambda: worker.metrics.acks_published._value.get() >= 2, what="second ack published")
    assert publisher.ack_of("gw-2", stream) == 5
    publisher.publish("gw-2", Channel.RESULTS, batch("gw-2", stream, [item(s) for s in range(6, 11)]))
    wait_for(lambda: publisher.ack_of("gw-2", stream) == 15, what="ack jumps to 15 once the gap fills")
    assert _count(cloud_settings.db_url) == 15
    engine = make_engine(cloud_settings.db_url)
    with engine.connect() as conn:
        stored = conn.scalar(sa.select(GatewayStream.acked_seq).where(GatewayStream.stream == stream))
    engine.dispose()
    assert stored == 15


def test_ingest_streams_are_acked_independently(
    start_worker: Callable[..., IngestWorker], publisher: Publisher
) -> None:
    start_worker()
    old, new = new_stream(), new_stream()
    publisher.publish("gw-3", Channel.RESULTS, batch("gw-3", old, [item(1), item(2)]))
    publisher.publish("gw-3", Channel.RESULTS, batch("gw-3", new, [item(1)]))
    publisher.publish("gw-4", Channel.RESULTS, batch("gw-4", old, [item(1), item(2), item(3)]))
    wait_for(lambda: publisher.ack_of("gw-3", old) == 2, what="gw-3 old stream ack")
    wait_for(lambda: publisher.ack_of("gw-3", new) == 1, what="gw-3 new stream ack")
    wait_for(lambda: publisher.ack_of("gw-4", old) == 3, what="gw-4 ack")


def test_ingest_state_and_telemetry_update_gateway(
    start_worker: Callable[..., IngestWorker], publisher: Publisher, cloud_settings: CloudSettings
) -> None:
    worker = start_worker()
    publisher.publish("gw-5", Channel.STATE, state("gw-5", online=True, session=3), retain=True)
    publisher.publish("gw-5", Channel.TELEMETRY, telemetry("gw-5", inferences=42))
    wait_for(lambda: worker.metrics.commits._value.get() >= 1, what="a commit")
    engine = make_engine(cloud_settings.db_url)

    def loaded() -> Gateway | None:
        with engine.connect() as conn:
            row = conn.execute(sa.select(Gateway).where(Gateway.id == "gw-5")).first()
        return None if row is None or row.telemetry is None else row  # type: ignore[return-value]

    wait_for(lambda: loaded() is not None, what="gateway row with telemetry")
    gw = loaded()
    engine.dispose()
    assert gw is not None
    assert gw.online is True
    assert gw.session == 3
    assert gw.agent_version == "0.1.0"
    assert gw.models[0]["name"] == "defect-cnn"
    assert gw.telemetry is not None
    assert gw.telemetry["inferences"] == 42
    assert gw.line == "line-1"


def test_two_workers_on_a_shared_subscription_split_the_work_and_ack_everything(
    start_worker: Callable[..., IngestWorker], publisher: Publisher, cloud_settings: CloudSettings
) -> None:
    group = f"g{uuid.uuid4().hex[:8]}"
    workers = [
        start_worker(share_group=group, ingest_client_id=f"{cloud_settings.ingest_client_id}-{n}")
        for n in (1, 2)
    ]
    stream = new_stream()
    for b in range(30):
        publisher.publish(
            "gw-7", Channel.RESULTS, batch("gw-7", stream, [item(b * 5 + i) for i in range(1, 6)])
        )
    wait_for(lambda: publisher.ack_of("gw-7", stream) == 150, what="ack of all 150 items")
    assert _count(cloud_settings.db_url) == 150
    # Both took part: the ack is right although neither worker saw every batch.
    assert all(w.metrics.results_inserted._value.get() > 0 for w in workers)


def test_worker_serves_its_own_metrics(
    start_worker: Callable[..., IngestWorker], publisher: Publisher
) -> None:
    worker = start_worker(metrics_port=0)
    publisher.publish("gw-8", Channel.RESULTS, b"[]")
    wait_for(lambda: worker.metrics.commits._value.get() == 1, what="commit of a dead letter")
    body = httpx.get(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5).text
    assert 'ingest_dead_letters_total{reason="bad_json"} 1.0' in body
    assert "ingest_results_inserted_total 0.0" in body


def test_ingest_ack_steps_over_items_the_gateway_shed(
    start_worker: Callable[..., IngestWorker], publisher: Publisher, cloud_settings: CloudSettings
) -> None:
    """Seqs 1..5 were shed by an outbox over its byte cap: they will never come, so the ack must
    not wait for them forever (the gateway would then re-send everything else for ever)."""
    start_worker()
    stream = new_stream()
    shed_batch = batch("gw-shed", stream, [item(s) for s in range(6, 11)]).model_copy(
        update={"oldest_held_seq": 6}
    )
    publisher.publish("gw-shed", Channel.RESULTS, shed_batch)
    wait_for(lambda: publisher.ack_of("gw-shed", stream) == 10, what="ack past the shed range")
    # Without the floor the same batch leaves the ack at 0: the gap is real in the database.
    other = new_stream()
    publisher.publish("gw-shed", Channel.RESULTS, batch("gw-shed", other, [item(s) for s in range(6, 11)]))
    wait_for(lambda: _count(cloud_settings.db_url, Result.stream == other) == 5, what="second stream stored")
    assert publisher.ack_of("gw-shed", other) == 0
