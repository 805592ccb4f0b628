"""Response schemas (``XPublic``): what the API promises, separate from the ORM tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from cloud.dispositions.schemas import DispositionBrief, DispositionPublic, ReviewCounts


class PublicModel(BaseModel):
    """Base of response schemas: built from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


class MachinePublic(BaseModel):
    """The machine a gateway runs on, from its latest birth; a field it could not read is null."""

    arch: str | None = Field(None, description="Architecture as the gateway's OS names it: x86_64, aarch64")
    cpu_model: str | None = Field(None, description="CPU model name")
    cpu_class: str | None = Field(
        None,
        description="CPU class rollouts can target (x86-64-avx512-vnni, x86-64-avx-vnni, x86-64-avx2, "
        "x86-64, arm64-i8mm, arm64-dotprod, arm64; see protocol/machine.py); null: another architecture",
    )
    features: list[str] = Field(
        default_factory=list, description="Inference-relevant ISA features, /proc/cpuinfo names (avx2, ...)"
    )
    cores: int | None = Field(None, description="Logical CPUs the agent may run on")
    memory_bytes: int | None = Field(None, description="Total memory in bytes")


class GatewayPublic(PublicModel):
    """A gateway as the cloud last heard of it."""

    id: str
    line: str | None = Field(description="Line the gateway serves, from its birth message or results")
    online: bool = Field(description="From the latest birth/death of the current session")
    session: int
    agent_version: str | None
    models: list[dict[str, Any]] = Field(description="Models loaded per slot, from the birth message")
    first_seen: datetime
    last_seen: datetime
    last_state_at: datetime | None = Field(description="When the cloud received its latest birth or death")
    telemetry: dict[str, Any] | None = Field(
        description="Latest telemetry sample (its timestamp: the gateway's clock)"
    )
    telemetry_at: datetime | None = Field(description="When the cloud received that sample")
    site: str | None = Field(None, description="Admin-managed site")
    tags: list[str] = Field(default_factory=list, description="Admin-managed tags rollouts can target")
    machine: MachinePublic | None = Field(
        None, description="CPU, features, cores and memory from the latest birth (null: not reported)"
    )


class GatewayOta(BaseModel):
    """A gateway's OTA picture: what the cloud wants, what it reports, and its OTA events."""

    gateway_id: str
    desired: dict[str, Any] | None = Field(description="Last desired state published")
    reported: dict[str, Any] | None = Field(description="Latest reported state: slots, phases, health")
    history: list[dict[str, Any]] = Field(description="OTA events, newest first")


class EventPublic(PublicModel):
    """Something a gateway reported for operators (OTA progress, outbox shedding, errors)."""

    id: int
    gateway_id: str
    timestamp: datetime = Field(description="When the gateway says it happened")
    received_at: datetime
    level: str = Field(description="info, warning or error")
    kind: str = Field(description="e.g. ota, outbox_shed")
    message: str
    details: dict[str, Any]


class EventPage(BaseModel):
    """A page of a gateway's events, newest first."""

    items: list[EventPublic]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last page")


class ResultPublic(PublicModel):
    """One stored inference result."""

    id: UUID
    gateway_id: str
    stream: str
    seq: int
    line: str
    station: str
    source: str
    frame: str
    model_name: str
    model_version: str
    model_sha256: str
    task: str
    label: str
    is_defect: bool | None
    score: float
    output: dict[str, Any]
    latency_ms: float
    captured_at: datetime
    inferred_at: datetime
    received_at: datetime
    replayed: bool
    disposition: DispositionBrief | None = Field(None, description="An operator's current verdict, if any")


class ResultPage(BaseModel):
    """A page of results, newest first, with how to fetch the next one."""

    items: list[ResultPublic]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last page")
    next_cursor: str | None = Field(description="Opaque cursor of the next page (stable under inserts)")


class LinePublic(BaseModel):
    """A production line known from gateways or results."""

    line: str
    gateways: int
    results: int
    last_result_at: datetime | None


class StatsBucket(BaseModel):
    """Counts in one time bucket ``[start, end)`` by capture time."""

    start: datetime
    end: datetime
    results: int
    inspected: int = Field(description="Results of defect-inspection models")
    defects: int
    defect_rate: float | None = Field(description="defects / inspected; null when nothing was inspected")
    parcels: int = Field(0, description="Parcels counted (results of parcel models)")
    damaged: int = Field(0, description="Parcels flagged as damaged")
    damaged_rate: float | None = Field(None, description="damaged / parcels; null when no parcel was counted")
    notes: int = Field(0, description="Maintenance notes written (results of notes models)")
    urgent_notes: int = Field(0, description="Notes of the highest urgency")


class LineStats(BaseModel):
    """Defect statistics of one line over ``[since, until)``."""

    line: str
    task: str | None = Field(None, description="The one task counted; null: every task")
    since: datetime
    until: datetime
    interval_s: int
    results: int
    results_by_task: dict[str, int] = Field(
        default_factory=dict, description="Results of the range per task, most frequent first"
    )
    inspected: int
    defects: int
    defect_rate: float | None
    defects_by_label: dict[str, int] = Field(
        default_factory=dict, description="Defects of the whole range by label, most frequent first"
    )
    parcels: int = Field(0, description="Parcels counted over the range (results of parcel models)")
    damaged: int = Field(0, description="Parcels flagged as damaged over the range")
    damaged_rate: float | None = Field(None, description="damaged / parcels; null when no parcel was counted")
    parcels_by_lane: dict[str, int] = Field(
        default_factory=dict, description="Parcels of the range per sort lane (their label), busiest first"
    )
    notes: int = Field(0, description="Maintenance notes written over the range")
    urgent_notes: int = Field(0, description="Notes of the highest urgency over the range")
    review: ReviewCounts = Field(
        default_factory=ReviewCounts,
        description="Operators' dispositions of the range's results and the false-reject rate they give",
    )
    buckets: list[StatsBucket]


class DeadLetterPublic(PublicModel):
    """A rejected message; the payload itself is served only as a short text preview."""

    id: int
    received_at: datetime
    topic: str
    reason_code: str
    reason: str
    payload_size: int
    payload_preview: str
    gateway_id: str | None
    stream: str | None
    seq: int | None


class DeadLetterPage(BaseModel):
    """A page of dead letters, newest first."""

    items: list[DeadLetterPublic]
    limit: int
    offset: int
    next_offset: int | None


class HealthPublic(BaseModel):
    """Liveness of the API and its database."""

    status: str
    database: str


class FleetEventPage(BaseModel):
    """A page of the whole fleet's events, newest first, with how to fetch the next one."""

    items: list[EventPublic]
    limit: int
    offset: int
    next_offset: int | None = Field(
        description="Offset of the next page; null on the last page or with a cursor"
    )
    next_cursor: str | None = Field(description="Opaque cursor of the next page (stable while events arrive)")


Item = TypeVar("Item", bound=BaseModel)


class NewestFirstPage(BaseModel, Generic[Item]):
    """A page of a newest-first list (``cloud.api.cursor.newest_first_page``) and how to fetch the next."""

    items: list[Item]
    limit: int
    offset: int
    next_offset: int | None = Field(
        description="Offset of the next page; null on the last page or with a cursor"
    )
    next_cursor: str | None = Field(description="Opaque cursor of the next page")


class DispositionPage(NewestFirstPage[DispositionPublic]):
    """A page of dispositions, most recently set first."""
