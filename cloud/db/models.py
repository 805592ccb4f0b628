"""ORM models. Every change here needs an Alembic revision (a test compares the two)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cloud.db.types import UTCDateTime

# Dead letters keep the start of a payload for diagnosis, not a copy of an attacker's megabyte.
DEAD_LETTER_PAYLOAD_BYTES = 64 * 1024

GATEWAY_ID_LEN = 64
NAME_LEN = 128


class Base(DeclarativeBase):
    """Declarative base; a shared metadata for Alembic autogenerate."""

    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Gateway(Base):
    """An edge gateway as last reported by its birth/death state and telemetry."""

    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(String(GATEWAY_ID_LEN), primary_key=True)
    line: Mapped[str | None] = mapped_column(String(NAME_LEN))
    online: Mapped[bool] = mapped_column(default=False)
    session: Mapped[int] = mapped_column(BigInteger, default=0)
    agent_version: Mapped[str | None] = mapped_column(String(64))
    models: Mapped[list[Any]] = mapped_column(default=list)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    last_state_at: Mapped[datetime | None]
    telemetry: Mapped[dict[str, Any] | None]
    telemetry_at: Mapped[datetime | None]


class GatewayStream(Base):
    """One outbox stream of a gateway and the highest contiguous seq committed (the ack)."""

    __tablename__ = "gateway_streams"

    gateway_id: Mapped[str] = mapped_column(
        String(GATEWAY_ID_LEN), ForeignKey("gateways.id", ondelete="CASCADE"), primary_key=True
    )
    stream: Mapped[str] = mapped_column(String(32), primary_key=True)
    acked_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class Result(Base):
    """One inference result; the item id is the primary key, which makes ingest idempotent."""

    __tablename__ = "results"
    __table_args__ = (
        Index("ix_results_gateway_stream_seq", "gateway_id", "stream", "seq"),
        Index("ix_results_line_captured_at", "line", "captured_at"),
        Index("ix_results_captured_at", "captured_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    gateway_id: Mapped[str] = mapped_column(
        String(GATEWAY_ID_LEN), ForeignKey("gateways.id", ondelete="CASCADE")
    )
    stream: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(BigInteger)
    line: Mapped[str] = mapped_column(String(NAME_LEN))
    station: Mapped[str] = mapped_column(String(NAME_LEN))
    source: Mapped[str] = mapped_column(String(NAME_LEN))
    frame: Mapped[str] = mapped_column(String(256))
    model_name: Mapped[str] = mapped_column(String(NAME_LEN))
    model_version: Mapped[str] = mapped_column(String(32))
    model_sha256: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(NAME_LEN))
    is_defect: Mapped[bool | None]
    score: Mapped[float]
    output: Mapped[dict[str, Any]]
    latency_ms: Mapped[float]
    captured_at: Mapped[datetime]
    inferred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    replayed: Mapped[bool] = mapped_column(default=False)


class Event(Base):
    """Something a gateway reported for operators (OTA progress, outbox shedding, errors)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_gateway_timestamp", "gateway_id", "timestamp"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gateway_id: Mapped[str] = mapped_column(
        String(GATEWAY_ID_LEN), ForeignKey("gateways.id", ondelete="CASCADE")
    )
    timestamp: Mapped[datetime]
    received_at: Mapped[datetime]
    level: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(NAME_LEN))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]


class DeadLetter(Base):
    """A message that failed validation, parked with the reason instead of crashing a worker."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_received_at", "received_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime]
    topic: Mapped[str] = mapped_column(Text)
    reason_code: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    payload_size: Mapped[int] = mapped_column(Integer)
    gateway_id: Mapped[str | None] = mapped_column(String(GATEWAY_ID_LEN))
    stream: Mapped[str | None] = mapped_column(String(32))
    seq: Mapped[int | None] = mapped_column(BigInteger)
