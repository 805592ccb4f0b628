"""Builders of wire messages and a small real MQTT publisher for the cloud tests."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import paho.mqtt.client as mqtt
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, event

from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.ingest.decode import Inbound
from cloud.ingest.service import ingest_messages
from protocol.messages import (
    Ack,
    ClassificationOutput,
    DefectOutput,
    EventBatch,
    EventItem,
    EventValue,
    GatewayState,
    LoadedModel,
    ModelRef,
    ResultBatch,
    ResultItem,
    Telemetry,
    WireModel,
    decode,
    encode,
)
from protocol.topics import Channel, TopicSpace

SHA = "ab" * 32
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def item(
    seq: int,
    *,
    line: str = "line-1",
    at: datetime | None = None,
    defect: bool = False,
    model: str = "defect-cnn",
    label: str | None = None,
    classification: bool = False,
) -> ResultItem:
    """One result item; ``at`` defaults to T0 + seq seconds."""
    captured = at or T0 + timedelta(seconds=seq)
    output: DefectOutput | ClassificationOutput
    if classification:
        output = ClassificationOutput(label=label or "parcel", score=0.7)
    else:
        output = DefectOutput(label=label or ("scratch" if defect else "ok"), is_defect=defect, score=0.9)
    return ResultItem(
        id=uuid.uuid4(),
        seq=seq,
        captured_at=captured,
        inferred_at=captured + timedelta(milliseconds=20),
        line=line,
        station="st-1",
        source="cam-1",
        frame=f"frame-{seq}",
        model=ModelRef(name=model, version="1.0", sha256=SHA),
        output=output,
        latency_ms=12.5,
    )


def batch(gateway_id: str, stream: str, items: Iterable[ResultItem]) -> ResultBatch:
    """A result batch of ``items``."""
    return ResultBatch(gateway_id=gateway_id, stream=stream, sent_at=datetime.now(UTC), items=tuple(items))


def state(
    gateway_id: str, online: bool, session: int, at: datetime | None = None, line: str = "line-1"
) -> GatewayState:
    """A birth (online) or death message."""
    return GatewayState(
        gateway_id=gateway_id,
        online=online,
        session=session,
        agent_version="0.1.0",
        line=line,
        models=(LoadedModel(name="defect-cnn", version="1.0", sha256=SHA, slot="main", task="defect"),),
        timestamp=at or datetime.now(UTC),
    )


def gateway_event(
    gateway_id: str,
    timestamp: datetime,
    level: Literal["info", "warning", "error"],
    kind: str,
    message: str,
    details: dict[str, EventValue] | None = None,
) -> EventBatch:
    """One gateway event as an agent's outbox sends it: a batch of one item, on a stream of its own."""
    event = EventItem(
        id=uuid.uuid4(),
        seq=1,
        timestamp=timestamp,
        level=level,
        kind=kind,
        message=message,
        details=details or {},
    )
    return EventBatch(gateway_id=gateway_id, stream=new_stream(), sent_at=datetime.now(UTC), items=(event,))


def telemetry(gateway_id: str, inferences: int = 10) -> Telemetry:
    """A telemetry sample."""
    return Telemetry(
        gateway_id=gateway_id,
        timestamp=datetime.now(UTC),
        uptime_s=5.0,
        cpu_percent=12.0,
        memory_bytes=1000,
        frames_in=inferences,
        inferences=inferences,
        frames_dropped=0,
        publish_errors=0,
        outbox_depth=0,
        outbox_bytes=0,
    )


def inbound(topics: TopicSpace, gateway_id: str, channel: Channel, msg: WireModel | bytes) -> Inbound:
    """A received message as the worker would see it, for calling the service directly."""
    payload = msg if isinstance(msg, bytes) else encode(msg)
    return Inbound(topics.topic(gateway_id, channel), payload, datetime.now(UTC))


def new_stream() -> str:
    """A fresh outbox stream id."""
    return uuid.uuid4().hex


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail the test naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class Publisher:
    """A plain paho client standing in for a gateway: publishes and records acks."""

    def __init__(self, broker: tuple[str, int], topics: TopicSpace) -> None:
        self.topics = topics
        self.acks: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.connect(*broker)
        self.client.loop_start()
        self.client.subscribe(topics.subscription(Channel.ACK), qos=1)
        if not self._subscribed.wait(5):
            raise AssertionError("test publisher: SUBACK not received")

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        ack = decode(Ack, msg.payload)
        with self._lock:
            key = (ack.gateway_id, ack.stream)
            self.acks[key] = max(self.acks.get(key, 0), ack.acked_seq)

    def ack_of(self, gateway_id: str, stream: str) -> int:
        """Highest ack seen for the stream (0 if none)."""
        with self._lock:
            return self.acks.get((gateway_id, stream), 0)

    def publish(
        self, gateway_id: str, channel: Channel, msg: WireModel | bytes, retain: bool = False
    ) -> None:
        """Publish QoS 1 and wait for the broker's PUBACK."""
        payload = msg if isinstance(msg, bytes) else encode(msg)
        info = self.client.publish(self.topics.topic(gateway_id, channel), payload, qos=1, retain=retain)
        info.wait_for_publish(5)

    def publish_raw(self, topic: str, payload: bytes) -> None:
        """Publish to an arbitrary topic (for unknown-channel tests)."""
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def clear_session(broker: tuple[str, int], client_id: str) -> None:
    """Drop a persistent session a test worker left on the broker."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True
    )
    client.connect(*broker)
    client.loop_start()
    time.sleep(0.1)
    client.disconnect()
    client.loop_stop()


STREAM = new_stream()


def seed(db_url: str, topics: TopicSpace) -> None:
    """line-1: gw-a, 10 defect results one minute apart (seq 3, 6, 9 defective); line-2: 5 others."""
    migrate(db_url)
    engine = make_engine(db_url)
    line1 = [item(s, at=T0 + timedelta(minutes=s), defect=s % 3 == 0) for s in range(1, 11)]
    line2 = [
        item(s, line="line-2", at=T0 + timedelta(minutes=s), model="parcel-cls", classification=True)
        for s in range(1, 6)
    ]
    ingest_messages(
        make_sessionmaker(engine),
        [
            inbound(topics, "gw-a", Channel.STATE, state("gw-a", True, 1)),
            inbound(topics, "gw-a", Channel.TELEMETRY, telemetry("gw-a", inferences=10)),
            inbound(topics, "gw-a", Channel.RESULTS, batch("gw-a", STREAM, line1)),
            inbound(topics, "gw-b", Channel.STATE, state("gw-b", False, 4, line="line-2")),
            inbound(topics, "gw-b", Channel.RESULTS, batch("gw-b", STREAM, line2)),
            inbound(topics, "gw-b", Channel.RESULTS, b"garbage"),
        ],
        topics,
    )
    engine.dispose()


def count_statements(client: TestClient, path: str) -> tuple[int, Any]:
    """How many SQL statements answering GET ``path`` ran (API and console alike), and the answer."""
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])  # the statement text

    event.listen(engine, "before_cursor_execute", count)
    try:
        answer = client.get(path)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert answer.status_code == 200, answer.text
    is_json = answer.headers["content-type"].startswith("application/json")
    return len(seen), answer.json() if is_json else answer.text
