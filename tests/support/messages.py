"""Builders of the wire messages a gateway sends, as the cloud tests feed them to ingest."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal

from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.decode import Inbound
from cloud.ingest.service import ingest_messages
from protocol.messages import (
    ClassificationOutput,
    DefectOutput,
    EventBatch,
    EventItem,
    EventValue,
    GatewayState,
    LoadedModel,
    MachineInfo,
    ModelRef,
    NotesOutput,
    ResultBatch,
    ResultItem,
    Telemetry,
    WireModel,
    encode,
)
from protocol.ota import ReportedState, SlotHealth, SlotReport
from protocol.topics import Channel, TopicSpace
from tests.support.machines import GATEWAY_MACHINE

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


def note(
    seq: int,
    text: str | None,
    *,
    line: str = "line-1",
    at: datetime | None = None,
    category: str = "mechanical",
    urgency: str = "low",
) -> ResultItem:
    """One maintenance note as a notes model's result (``text`` None: an agent that predates note texts)."""
    output = NotesOutput(
        label=category, score=0.8, category=category, urgency=urgency, urgency_score=0.7, text=text
    )
    return item(seq, line=line, at=at, model="notes-minilm").model_copy(
        update={"output": output, "source": "notes", "frame": f"note-{seq:06d}.txt"}
    )


def batch(gateway_id: str, stream: str, items: Iterable[ResultItem]) -> ResultBatch:
    """A result batch of ``items``."""
    return ResultBatch(gateway_id=gateway_id, stream=stream, sent_at=datetime.now(UTC), items=tuple(items))


def state(
    gateway_id: str,
    online: bool,
    session: int,
    at: datetime | None = None,
    line: str = "line-1",
    machine: MachineInfo = GATEWAY_MACHINE,
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
        machine=machine,
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


def ingest(db_url: str, topics: TopicSpace, gateway_id: str, channel: Channel, *messages: WireModel) -> None:
    """Store ``messages`` of ``gateway_id`` through the ingest service, as a worker would."""
    engine = make_engine(db_url)
    try:
        found = [inbound(topics, gateway_id, channel, m) for m in messages]
        ingest_messages(make_sessionmaker(engine), found, topics)
    finally:
        engine.dispose()


def reported(
    gateway_id: str,
    version: str,
    revision: int,
    health: SlotHealth,
    phase: str = "committed",
    slot: str = "main",
    error: str | None = None,
) -> ReportedState:
    """``gateway_id``'s reported OTA state: ``slot`` runs defect-cnn ``version`` in ``phase``."""
    report = SlotReport(
        active=ModelRef(name="defect-cnn", version=version, sha256=SHA),
        phase=phase,
        health=health,
        error=error,
    )
    return ReportedState(
        gateway_id=gateway_id, desired_revision=revision, slots={slot: report}, timestamp=datetime.now(UTC)
    )


def new_stream() -> str:
    """A fresh outbox stream id."""
    return uuid.uuid4().hex


def backlog_telemetry(gateway_id: str, depth: int, at: datetime) -> Telemetry:
    """A telemetry sample at ``at`` with ``depth`` items waiting in the outbox."""
    return Telemetry(
        gateway_id=gateway_id,
        timestamp=at,
        uptime_s=1.0,
        cpu_percent=1.0,
        memory_bytes=1,
        frames_in=0,
        inferences=0,
        frames_dropped=0,
        publish_errors=0,
        outbox_depth=depth,
        outbox_bytes=depth * 100,
    )
