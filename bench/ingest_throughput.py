"""Ingest end to end (publisher -> Mosquitto -> ingest worker -> PostgreSQL -> ack) vs raw COPY.

Throughput: the same result rows go (a) as ResultBatch messages through the real Mosquitto into
the real ingest worker, timed from the first publish to the ack covering the last seq, and (b)
straight into the same table with PostgreSQL COPY. Goal: ingest / COPY >= 0.67.

Latency: batches published at a fixed 5,000 rows/s; for each batch, publish -> ack covering it
(the ack goes out right after the database commit), p50 and p99.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import report
from cloud.db import migrate
from protocol.messages import Ack, DefectOutput, ModelRef, ResultBatch, ResultItem, decode, encode
from protocol.topics import Channel, TopicSpace

BROKER_PORT = 1883  # --broker-port changes it (e.g. a Mosquitto with set_tcp_nodelay)
ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MODEL = ModelRef(name="defect-cnn", version="1.0.0", sha256="ab" * 32)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@contextmanager
def fresh_database() -> Iterator[str]:
    name = f"fe_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_batches(gateway: str, stream: str, rows: int, per_batch: int) -> list[ResultBatch]:
    batches = []
    for first in range(1, rows + 1, per_batch):
        items = tuple(
            ResultItem(
                id=uuid.uuid4(),
                seq=seq,
                captured_at=T0 + timedelta(milliseconds=seq),
                inferred_at=T0 + timedelta(milliseconds=seq + 5),
                line="line-1",
                station="inspect-1",
                source="cam1",
                frame=f"cam1#{seq}",
                model=MODEL,
                output=DefectOutput(label="good", is_defect=False, score=0.97, scores={"good": 0.97}),
                latency_ms=4.2,
            )
            for seq in range(first, min(first + per_batch, rows + 1))
        )
        batches.append(ResultBatch(gateway_id=gateway, stream=stream, sent_at=T0, items=items))
    return batches


class AckWatcher:
    """Subscribes to one gateway's ack topic and records when each ack value first arrived."""

    def __init__(self, topics: TopicSpace, gateway: str) -> None:
        self.acked = 0
        self.arrivals: list[tuple[float, int]] = []
        self._cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}")
        self.client.max_inflight_messages_set(1000)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", BROKER_PORT)
        self.client.loop_start()
        self.client.subscribe(topics.topic(gateway, Channel.ACK), qos=1)
        time.sleep(0.3)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        ack = decode(Ack, msg.payload)
        with self._cond:
            if ack.acked_seq > self.acked:
                self.acked = ack.acked_seq
                self.arrivals.append((time.perf_counter(), ack.acked_seq))
                self._cond.notify_all()

    def wait(self, seq: int, timeout: float) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.acked >= seq, timeout):
                raise RuntimeError(f"ack stuck at {self.acked}, expected {seq}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def ingest_process(db_url: str, topics: TopicSpace) -> Iterator[None]:
    """``factory-cloud ingest`` as its own process, as deployed (not sharing this process's GIL)."""
    argv = [
        str(Path(sys.executable).parent / "factory-cloud"), "--log-level", "WARNING", "ingest", "--db", db_url,
        "--broker", f"mqtt://127.0.0.1:{BROKER_PORT}", "--topic-root", topics.root, "--share-group", "",
        "--ingest-client-id", f"bench-{uuid.uuid4().hex[:6]}",
    ]  # fmt: skip
    proc = subprocess.Popen(argv)  # noqa: S603 - our own console script
    try:
        # Ready once a warm-up batch is acknowledged (connected, subscribed, DB migrated).
        warm = make_batches("bench-warmup", uuid.uuid4().hex, 1, 1)[0]
        watcher = AckWatcher(topics, warm.gateway_id)
        try:
            deadline = time.monotonic() + 60
            while watcher.acked < 1:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("ingest process did not come up")
                watcher.client.publish(topics.topic(warm.gateway_id, Channel.RESULTS), encode(warm), qos=1)
                time.sleep(0.5)
        finally:
            watcher.close()
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def run_ingest(
    db_url: str, batches: list[ResultBatch], rate_rows_s: float | None
) -> tuple[float, list[float]]:
    """Publish ``batches`` (paced at ``rate_rows_s`` if given); return (seconds, per-batch latencies)."""
    topics = TopicSpace(f"bench-{uuid.uuid4().hex[:8]}/factory/v1")
    gateway = batches[0].gateway_id
    with ingest_process(db_url, topics):
        watcher = AckWatcher(topics, gateway)
        try:
            payloads = [encode(b) for b in batches]
            topic = topics.topic(gateway, Channel.RESULTS)
            sent: list[tuple[float, int]] = []
            start = time.perf_counter()
            due = start
            for batch, payload in zip(batches, payloads, strict=True):
                if rate_rows_s is not None:
                    time.sleep(max(0.0, due - time.perf_counter()))
                    due += len(batch.items) / rate_rows_s
                sent.append((time.perf_counter(), batch.items[-1].seq))
                watcher.client.publish(topic, payload, qos=1)
            watcher.wait(batches[-1].items[-1].seq, 300)
            elapsed = time.perf_counter() - start
        finally:
            watcher.close()
    latencies = [
        (next(t for t, acked in watcher.arrivals if acked >= seq) - sent_at) * 1000 for sent_at, seq in sent
    ]
    return elapsed, latencies


COLUMNS = [
    "id",
    "gateway_id",
    "stream",
    "seq",
    "line",
    "station",
    "source",
    "frame",
    "model_name",
    "model_version",
    "model_sha256",
    "task",
    "label",
    "is_defect",
    "score",
    "output",
    "latency_ms",
    "captured_at",
    "inferred_at",
    "received_at",
    "replayed",
]


def run_copy(db_url: str, batches: list[ResultBatch]) -> float:
    """Raw COPY of the same rows (gateway row created first, as ingest would)."""
    dsn = db_url.replace("postgresql+psycopg://", "postgresql://")
    now = datetime.now(UTC)
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO gateways (id, online, session, models, first_seen, last_seen) "
            "VALUES (%s, false, 0, '[]', %s, %s)",
            (batches[0].gateway_id, now, now),
        )
        conn.commit()
        start = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY results ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for batch in batches:
                for item in batch.items:
                    out = item.output
                    copy.write_row(
                        (
                            item.id, batch.gateway_id, batch.stream, item.seq, item.line, item.station,
                            item.source, item.frame, item.model.name, item.model.version, item.model.sha256,
                            out.kind, out.label, getattr(out, "is_defect", None), out.score,
                            out.model_dump_json(), item.latency_ms, item.captured_at, item.inferred_at, now,
                            item.replayed,
                        )
                    )  # fmt: skip
        conn.commit()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--per-batch", type=int, default=200, help="result items per MQTT message")
    parser.add_argument("--rate", type=float, default=5000.0, help="rows/s for the latency run")
    parser.add_argument("--latency-seconds", type=float, default=6.0)
    parser.add_argument("--broker-port", type=int, default=1883, help="Mosquitto on 127.0.0.1:PORT")
    args = parser.parse_args()
    global BROKER_PORT  # a benchmark script's one knob
    BROKER_PORT = args.broker_port
    stream = uuid.uuid4().hex
    batches = make_batches("bench-gw", stream, args.rows, args.per_batch)
    with fresh_database() as url:
        copy_s = run_copy(url, batches)
    with fresh_database() as url:
        ingest_s, _ = run_ingest(url, batches, None)
    paced_rows = int(args.rate * args.latency_seconds)
    paced = make_batches("bench-gw", uuid.uuid4().hex, paced_rows, max(1, int(args.rate / 50)))
    with fresh_database() as url:
        _, latencies = run_ingest(url, paced, args.rate)
    q = statistics.quantiles(latencies, n=100)
    report(
        f"ingest ({args.rows} rows, {args.per_batch} per message, Mosquitto -> ingest -> PostgreSQL)",
        [
            ("raw COPY", f"{args.rows / copy_s:10.0f} rows/s"),
            ("ingest end to end", f"{args.rows / ingest_s:10.0f} rows/s (first publish to final ack)"),
            ("ratio ingest / COPY", f"{copy_s / ingest_s:10.3f}   (goal >= 0.67)"),
            (f"publish -> commit+ack at {args.rate:.0f} rows/s", f"p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms"),
        ],
    )


if __name__ == "__main__":
    main()
