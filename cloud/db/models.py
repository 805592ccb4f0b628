"""ORM models. Every change here needs an Alembic revision (a test compares the two)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from cloud.db.types import UTCDateTime

# Dead letters keep the start of a payload for diagnosis, not a copy of an attacker's megabyte.
DEAD_LETTER_PAYLOAD_BYTES = 64 * 1024

GATEWAY_ID_LEN = 64
NAME_LEN = 128
CPU_CLASS_LEN = 32  # protocol.messages.CpuClassName's limit


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
    # The machine from the latest birth (protocol.messages.MachineInfo); its CPU class also in a
    # column of its own, which rollout targets match on. NULL: an agent that does not report it.
    machine: Mapped[dict[str, Any] | None]
    cpu_class: Mapped[str | None] = mapped_column(String(CPU_CLASS_LEN))
    # Admin-managed placement, used by rollout targets; never set from gateway messages.
    site: Mapped[str | None] = mapped_column(String(NAME_LEN))
    tags: Mapped[list[Any]] = mapped_column(default=list, server_default=text("'[]'"))


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
    # An operator's current verdict, loaded by one extra IN query per query of whole results, so
    # every API answer built from results carries it. The database deletes it with the result.
    disposition: Mapped[Disposition | None] = relationship(lazy="selectin", passive_deletes=True)


class Event(Base):
    """Something a gateway reported for operators (OTA progress, outbox shedding, errors)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_gateway_timestamp", "gateway_id", "timestamp"),
        # The fleet-wide list (GET /events) pages newest first by (timestamp, id).
        Index("ix_events_timestamp_id", "timestamp", "id"),
        # Re-sent events are skipped on their id (ON CONFLICT DO NOTHING).
        Index("ux_events_event_id", "event_id", unique=True),
        # The contiguous ack of an event stream walks its seqs.
        Index("ix_events_gateway_stream_seq", "gateway_id", "stream", "seq"),
    )

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
    # Every event comes through a gateway's outbox (EventBatch) with these; the columns stay
    # nullable as migration 0006 made them, for rows stored before it.
    event_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    stream: Mapped[str | None] = mapped_column(String(32))
    seq: Mapped[int | None] = mapped_column(BigInteger)


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


# ---- registry, access control, OTA and rollouts ------------------------------------------------


class User(Base):
    """A person who logs in; the password is stored as an argon2 hash only."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(NAME_LEN), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    disabled: Mapped[bool] = mapped_column(default=False)


class ApiToken(Base):
    """An API token; only the SHA-256 of its secret is stored (tokens are long random strings)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    role: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked: Mapped[bool] = mapped_column(default=False)
    # Set on a gateway token (role 'gateway', migration 0009): the one gateway it may upload for.
    gateway_id: Mapped[str | None] = mapped_column(String(GATEWAY_ID_LEN))
    # Every token has a lifetime (migration 0010): a login's session hours, an API token's --expires.
    expires_at: Mapped[datetime]


class AuditEntry(Base):
    """One write through the API: who, what, when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(NAME_LEN))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256))
    details: Mapped[dict[str, Any]]
    # The user behind the token that acted (None for tokens of no user, the CLI, anonymous
    # failed logins). No foreign key: the log is history and outlives what it names.
    user_id: Mapped[int | None]


class Blob(Base):
    """A content-addressed file in the artifact store; ``complete`` once its bytes hash right."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    received_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    complete: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class ModelVersion(Base):
    """An immutable model release: the signed manifest, its signature, card and files."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_model_versions_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    version: Mapped[str] = mapped_column(String(32))
    task: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    manifest: Mapped[dict[str, Any]]
    signature: Mapped[dict[str, Any]]
    fingerprint: Mapped[str] = mapped_column(String(64))
    card: Mapped[str | None] = mapped_column(Text)
    signature_warning: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME_LEN))


class GatewayDesired(Base):
    """The desired state last published to a gateway; ``revision`` only grows."""

    __tablename__ = "gateway_desired"

    gateway_id: Mapped[str] = mapped_column(String(GATEWAY_ID_LEN), primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger)
    document: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class GatewayReported(Base):
    """A gateway's latest reported OTA state (slots, versions, phases, health)."""

    __tablename__ = "gateway_reported"

    gateway_id: Mapped[str] = mapped_column(String(GATEWAY_ID_LEN), primary_key=True)
    desired_revision: Mapped[int] = mapped_column(BigInteger)
    rollout_id: Mapped[str | None] = mapped_column(String(64))
    slots: Mapped[dict[str, Any]]
    timestamp: Mapped[datetime]
    received_at: Mapped[datetime]


class Rollout(Base):
    """A staged rollout of one model version to a set of gateways; ``plan`` maps gateway -> wave."""

    __tablename__ = "rollouts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(NAME_LEN))
    version: Mapped[str] = mapped_column(String(32))
    slot: Mapped[str] = mapped_column(String(NAME_LEN))
    target: Mapped[dict[str, Any]]
    waves: Mapped[list[Any]]
    bake_s: Mapped[float]
    thresholds: Mapped[dict[str, Any]]
    plan: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    wave: Mapped[int] = mapped_column(Integer, default=0)
    wave_started_at: Mapped[datetime | None]
    wave_healthy_since: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME_LEN))
    updated_at: Mapped[datetime]


class RolloutEvent(Base):
    """The event log of a rollout."""

    __tablename__ = "rollout_events"
    __table_args__ = (Index("ix_rollout_events_rollout_id", "rollout_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollout_id: Mapped[str] = mapped_column(String(64), ForeignKey("rollouts.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]


# ---- defect thumbnails and alerts ---------------------------------------------------------------


class Thumbnail(Base):
    """A small JPEG crop of a flagged result; deleted with its result (retention cascades).

    ``crop`` is the cropped rectangle in source-frame pixels (x, y, w, h), the frame size and the
    JPEG size (tw, th): a box in frame pixels lands at ``(bx - x) * tw / w`` in the JPEG.
    """

    __tablename__ = "thumbnails"
    __table_args__ = (Index("ix_thumbnails_line_captured_at", "line", "captured_at"),)

    result_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("results.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[str] = mapped_column(String(NAME_LEN))
    captured_at: Mapped[datetime]
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(Integer)
    # Crop geometry from the JPEG's comment segment (None when the agent did not send it).
    crop: Mapped[dict[str, Any] | None]


class AlertRule(Base):
    """A condition on a line, evaluated by the alerts beat task (kinds in ``cloud.alerts.rules``)."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    line: Mapped[str] = mapped_column(String(NAME_LEN))
    kind: Mapped[str] = mapped_column(String(32))
    threshold: Mapped[float]
    window_s: Mapped[float | None]
    min_results: Mapped[int] = mapped_column(Integer, default=1)
    # A disabled rule is kept (with its history) but not evaluated.
    enabled: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME_LEN))


class Alert(Base):
    """One occurrence of a rule's condition for one subject (a line or a gateway)."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_rule_subject_closed", "rule_id", "subject", "closed_at"),
        Index("ix_alerts_opened_at", "opened_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # SET NULL: deleting a rule keeps its alert history (closed with the rule).
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alert_rules.id", ondelete="SET NULL"))
    line: Mapped[str] = mapped_column(String(NAME_LEN))
    gateway_id: Mapped[str | None] = mapped_column(String(GATEWAY_ID_LEN))
    subject: Mapped[str] = mapped_column(String(NAME_LEN))
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[float]
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(NAME_LEN))
    acknowledged_at: Mapped[datetime | None]


# ---- operators' dispositions ---------------------------------------------------------------------


class Disposition(Base):
    """An operator's current verdict on a result (kinds in ``cloud.dispositions.schemas``).

    Changing it overwrites this row; every change is in the audit log. The result's line, gateway,
    model and label are copied here, so the labelled data for re-teaching a model, and the
    false-reject rate of a line, read this table alone. Deleted with its result (retention).
    """

    __tablename__ = "dispositions"
    __table_args__ = (
        # The list pages newest first by (at, result_id); per line for the console's live probe.
        Index("ix_dispositions_at_result_id", "at", "result_id"),
        Index("ix_dispositions_line_at", "line", "at"),
        # A line's false-reject rate counts the dispositions of results captured in a range.
        Index("ix_dispositions_line_captured_at", "line", "captured_at"),
    )

    result_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("results.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[str] = mapped_column(String(NAME_LEN))
    gateway_id: Mapped[str] = mapped_column(String(GATEWAY_ID_LEN))
    model_name: Mapped[str] = mapped_column(String(NAME_LEN))
    model_version: Mapped[str] = mapped_column(String(32))
    task: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(NAME_LEN))
    captured_at: Mapped[datetime]
    disposition: Mapped[str] = mapped_column(String(32))
    # The operator's label, for a ``labelled`` disposition (a note's right category); else NULL.
    true_label: Mapped[str | None] = mapped_column(String(NAME_LEN))
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(NAME_LEN))
    at: Mapped[datetime]
