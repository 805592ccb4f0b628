"""Pieces of the ingest benchmark: a fresh database, result batches, an ack watcher, the ingest
processes under test and the raw COPY baseline. ``bench.ota_rollout`` reuses the first ones."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from cloud.db import migrate
from cloud.ingest.rows import COPY_COLUMNS
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
        ack = decode(Ack, bytes(msg.payload))
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
def ingest_process(db_url: str, topics: TopicSpace, workers: int = 1) -> Iterator[None]:
    """``factory-cloud ingest`` as its own process(es), as deployed (not sharing this process's GIL).

    Several workers share one MQTT shared subscription, as in production; one uses a plain one.
    """
    share_group = f"bench{uuid.uuid4().hex[:6]}" if workers > 1 else ""
    with ExitStack() as stack:
        procs = [stack.enter_context(_one_ingest(db_url, topics, share_group)) for _ in range(workers)]
        # Ready once warm-up batches are acknowledged (connected, subscribed, DB migrated, and the
        # code paths of a first commit run once); with several workers, enough of them that the
        # broker's round robin hands each worker some.
        _warm_up(topics, procs, 1)
        if workers > 1:
            time.sleep(1.0)  # the others connect and subscribe while the first one answered
            _warm_up(topics, procs, 4 * workers)
        yield


@contextmanager
def _one_ingest(db_url: str, topics: TopicSpace, share_group: str) -> Iterator[subprocess.Popen[bytes]]:
    argv = [
        str(Path(sys.executable).parent / "factory-cloud"), "--log-level", "WARNING", "ingest", "--db", db_url,
        "--broker", f"mqtt://127.0.0.1:{BROKER_PORT}", "--topic-root", topics.root, "--share-group", share_group,
        "--ingest-client-id", f"bench-{uuid.uuid4().hex[:6]}",
    ]  # fmt: skip
    proc = subprocess.Popen(argv)  # noqa: S603 - our own console script
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _warm_up(topics: TopicSpace, procs: list[subprocess.Popen[bytes]], count: int) -> None:
    warm = [make_batches(f"bench-warmup-{i}", uuid.uuid4().hex, 1, 1)[0] for i in range(count)]
    watchers = [AckWatcher(topics, b.gateway_id) for b in warm]
    try:
        deadline = time.monotonic() + 60
        while any(w.acked < 1 for w in watchers):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("ingest process did not come up")
            for b, w in zip(warm, watchers, strict=True):
                if w.acked < 1:
                    w.client.publish(topics.topic(b.gateway_id, Channel.RESULTS), encode(b), qos=1)
            time.sleep(0.5)
    finally:
        for w in watchers:
            w.close()


# The same column list the ingest worker copies, so the baseline writes exactly its rows.
COLUMNS = list(COPY_COLUMNS)


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
