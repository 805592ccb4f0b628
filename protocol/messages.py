"""Message schemas on the wire (JSON, UTF-8). Each top-level message carries ``schema_version``.

Models forbid unknown keys and are frozen: a message is a fact, not a mutable object, and a
typo on either side is an error rather than a silently dropped field.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar
from uuid import UUID

import pydantic_core
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from protocol.topics import GATEWAY_ID_PATTERN

SCHEMA_VERSION: Literal[1] = 1
# Brokers default to far larger limits; a result batch of 1,000 items is ~600 KB, so 1 MiB
# leaves room while stopping a runaway publisher from filling the ingest worker's memory.
MAX_PAYLOAD_BYTES = 1024 * 1024
# Counts, sequence numbers and sizes fit a signed 64-bit integer, which is what a receiver stores
# them in: a larger number is refused here rather than failing the receiver's database.
MAX_WIRE_INT = 2**63 - 1
MAX_BATCH_ITEMS = 1000
# A defect crop for the console: small on purpose (a 160x120 JPEG is ~6 KB); base64 adds a third.
MAX_THUMBNAIL_B64 = 32 * 1024
# Where a thumbnail sits in its source frame rides inside the JPEG, as a comment segment (FF FE)
# right after SOI: this prefix, then a JSON object of these integer keys (the crop's x, y, w, h in
# frame pixels, the frame's size, the JPEG's own size). So the result needs no extra fields, and
# the cloud maps a box (frame pixels) onto the picture: thumbnail x = (box x - x) * tw / w.
CROP_COMMENT_PREFIX = b"factory-edge-crop:"
CROP_GEOMETRY_KEYS = ("x", "y", "w", "h", "frame_w", "frame_h", "tw", "th")
# A maintenance note's own words ride with its triage; as long as a notes source keeps by default.
MAX_NOTE_CHARS = 4000

GatewayId = Annotated[str, Field(pattern=GATEWAY_ID_PATTERN, description="Gateway id, one topic level")]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="Lower-case hex SHA-256")]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]


def _no_nul(text: str) -> str:
    # PostgreSQL text and jsonb cannot hold U+0000: such a message would fail its insert and,
    # retried, stall ingest for everyone. Refused here, it is a dead letter naming the field.
    if "\x00" in text:
        raise ValueError(_NUL_REFUSED)
    return text


_NUL_REFUSED = "contains a NUL character (U+0000), which no text on the wire may hold"


Text = Annotated[str, AfterValidator(_no_nul)]


def wire_text(text: str, max_length: int) -> str:
    """``text`` made fit for a :data:`Text` field: control characters as ``\\xNN``, cut to length.

    For text the gateway does not choose (a decoded barcode, an exception's message), which
    would otherwise make its whole message invalid.
    """
    shown = "".join(ch if ch >= " " or ch in "\t\n" else f"\\x{ord(ch):02x}" for ch in text)
    return shown if len(shown) <= max_length else shown[: max_length - 1] + "\u2026"


VersionStr = Annotated[
    str, Field(pattern=r"^\d{1,6}(\.\d{1,6}){0,2}$", description="Monotonic version: MAJOR[.MINOR[.PATCH]]")
]


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (naive datetimes never go on the wire)."""
    return datetime.now(UTC)


def version_key(version: str) -> tuple[int, int, int]:
    """Sort key for a VersionStr: '1.2' < '1.10' < '2'."""
    parts = [int(p) for p in version.split(".")]
    while len(parts) < 3:
        parts.append(0)
    return parts[0], parts[1], parts[2]


class WireModel(BaseModel):
    """Base of every wire schema: strict about keys, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelRef(WireModel):
    """Which exact model produced something."""

    name: Name
    version: VersionStr
    sha256: Sha256Hex


class LoadedModel(ModelRef):
    """A model loaded into one of the agent's slots."""

    slot: Name
    task: Name


CpuClassName = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,31}$",
        description="CPU class, one of protocol.machine.CPU_CLASSES (a newer agent may know more)",
    ),
]
CpuFeature = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$", description="A /proc/cpuinfo flag")]


class MachineInfo(WireModel):
    """The machine a gateway runs on, as its birth reports it; a field it could not read is None.

    ``cpu_class`` is a plain name rather than an enumeration: a class added by a newer agent must
    not make its whole birth invalid for a cloud that does not know it yet.
    """

    arch: Text | None = Field(
        default=None, max_length=32, description="platform.machine(): x86_64, aarch64, ..."
    )
    cpu_model: Text | None = Field(
        default=None, max_length=128, description="e.g. /proc/cpuinfo 'model name'"
    )
    cpu_class: CpuClassName | None = Field(
        default=None,
        description="protocol.machine.cpu_class of arch and features; None: another architecture",
    )
    features: tuple[CpuFeature, ...] = Field(
        default=(),
        max_length=32,
        description="Inference-relevant ISA features present (protocol.machine.INFERENCE_FEATURES)",
    )
    cores: int | None = Field(
        default=None, ge=1, le=MAX_WIRE_INT, description="Logical CPUs the agent may run on"
    )
    memory_bytes: int | None = Field(
        default=None, ge=0, le=MAX_WIRE_INT, description="Total memory (MemTotal)"
    )

    @field_validator("features")
    @classmethod
    def _unique_features(cls, features: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(features)) != len(features):
            raise ValueError("features are listed more than once")
        return features


class GatewayState(WireModel):
    """Retained birth (``online=True``) or last-will / clean death (``online=False``)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    gateway_id: GatewayId
    online: bool
    session: int = Field(
        ge=0, le=MAX_WIRE_INT, description="Increments on every agent start (Sparkplug B's bdSeq idea)"
    )
    agent_version: Text = Field(max_length=64)
    line: Name | None = None
    models: tuple[LoadedModel, ...] = ()
    timestamp: AwareDatetime
    machine: MachineInfo = Field(description="The gateway's machine (what could not be read is null)")


# ---- task outputs --------------------------------------------------------------------------


# A number measured at the gateway: NaN or infinity would go out as null and fail the whole batch.
Finite = Annotated[float, Field(allow_inf_nan=False)]


class Box(WireModel):
    """Axis-aligned box in source-image pixels."""

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    w: int = Field(ge=0)
    h: int = Field(ge=0)


class DefectOutput(WireModel):
    """Visual inspection of one part: is it defective, which defect, where."""

    kind: Literal["defect"] = "defect"
    label: Name
    is_defect: bool
    score: float = Field(ge=0.0, le=1.0, description="Confidence in ``label`` (or anomaly score)")
    scores: dict[Name, float] = Field(default_factory=dict)
    box: Box | None = None
    raw_score: Finite | None = Field(
        default=None, ge=0.0, description="Anomaly graphs: the raw distance, a defect from ``threshold`` up"
    )
    threshold: Finite | None = Field(
        default=None,
        description="The cut-off the verdict was judged against: an anomaly graph's raw distance "
        "threshold; a classifier's probability cut-off of its top label, when that is a defect label",
    )


class ClassificationOutput(WireModel):
    """Generic single-label classification."""

    kind: Literal["classification"] = "classification"
    label: Name
    score: float = Field(ge=0.0, le=1.0)
    scores: dict[Name, float] = Field(default_factory=dict)


class ParcelOutput(WireModel):
    """One parcel counted as it crossed the counting line of a parcel line."""

    kind: Literal["parcel"] = "parcel"
    label: Name = Field(description="Routing decision: the sort lane, or 'reject'")
    score: float = Field(ge=0.0, le=1.0, description="Detector confidence")
    track_id: int = Field(ge=0)
    box: Box | None = Field(default=None, description="Axis-aligned bounds in the frame")
    angle_deg: float | None = Field(default=None, description="Rotation of the oriented box")
    length_mm: float | None = Field(default=None, ge=0)
    width_mm: float | None = Field(default=None, ge=0)
    barcode: Text | None = Field(default=None, max_length=256)
    symbology: Text | None = Field(default=None, max_length=32)
    damaged: bool = False
    damage_score: Finite | None = Field(
        default=None, ge=0.0, description="Mean damage score over the frames the parcel was wholly in view"
    )
    damage_threshold: Finite | None = Field(default=None, description="Damaged from this damage score up")


class NotesOutput(WireModel):
    """Triage of one maintenance / operator note."""

    kind: Literal["notes"] = "notes"
    label: Name = Field(description="The category (same as ``category``), for uniform querying")
    score: float = Field(ge=0.0, le=1.0, description="Confidence of the category")
    category: Name
    urgency: Name
    urgency_score: float = Field(ge=0.0, le=1.0)
    scores: dict[Name, float] = Field(default_factory=dict)
    text: Text | None = Field(
        default=None,
        max_length=MAX_NOTE_CHARS,
        description="The note as written (control characters shown as \\xNN, longer notes cut); "
        "None from agents older than this field",
    )


TaskOutput = Annotated[
    DefectOutput | ClassificationOutput | ParcelOutput | NotesOutput, Field(discriminator="kind")
]
# The tasks a stored result can be of: each output's ``kind`` (the cloud files results under it).
RESULT_TASKS: tuple[str, ...] = tuple(
    str(output.model_fields["kind"].default)
    for output in (DefectOutput, ClassificationOutput, ParcelOutput, NotesOutput)
)


class ResultItem(WireModel):
    """One inference result. ``id`` is globally unique; ``seq`` is per gateway outbox stream."""

    id: UUID
    seq: int = Field(ge=1, le=MAX_WIRE_INT)
    captured_at: AwareDatetime
    inferred_at: AwareDatetime
    line: Name
    station: Name
    source: Name
    frame: Text = Field(min_length=1, max_length=256, description="Source's reference for the input")
    model: ModelRef
    output: TaskOutput
    latency_ms: float = Field(ge=0.0)
    replayed: bool = False
    thumbnail_jpeg: str | None = Field(
        default=None,
        max_length=MAX_THUMBNAIL_B64,
        description="Base64 JPEG crop of a flagged item (rate-limited by the agent); rides the outbox",
    )


class ResultBatch(WireModel):
    """Results published together, QoS 1. ``stream`` names the agent's outbox incarnation."""

    schema_version: Literal[1] = SCHEMA_VERSION
    gateway_id: GatewayId
    stream: str = Field(pattern=r"^[0-9a-f]{32}$", description="Outbox stream id (uuid4 hex)")
    sent_at: AwareDatetime
    items: tuple[ResultItem, ...] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)
    oldest_held_seq: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WIRE_INT,
        description="Lowest seq the gateway still holds: every lower seq was acknowledged or shed "
        "(reported in an outbox_shed event), so the cloud's contiguous ack may pass it",
    )

    @field_validator("items")
    @classmethod
    def _unique_seqs(cls, items: tuple[ResultItem, ...]) -> tuple[ResultItem, ...]:
        _check_unique_seqs([item.seq for item in items])
        return items

    @model_validator(mode="after")
    def _floor_below_items(self) -> ResultBatch:
        _check_floor(self.oldest_held_seq, self.items)
        return self


class _Sequenced(Protocol):
    @property
    def seq(self) -> int: ...


def _check_unique_seqs(seqs: list[int]) -> None:
    if len(set(seqs)) != len(seqs):
        raise ValueError("items carry duplicate seq numbers")


def _check_floor(oldest_held_seq: int | None, items: Sequence[_Sequenced]) -> None:
    if oldest_held_seq is not None and oldest_held_seq > min(i.seq for i in items):
        raise ValueError("oldest_held_seq is above a seq this batch carries")


class Ack(WireModel):
    """Cloud -> gateway: every seq <= ``acked_seq`` of ``stream`` is committed to the database."""

    schema_version: Literal[1] = SCHEMA_VERSION
    gateway_id: GatewayId
    stream: str = Field(pattern=r"^[0-9a-f]{32}$")
    acked_seq: int = Field(ge=0, le=MAX_WIRE_INT)
    committed_at: AwareDatetime


DriftState = Literal["ok", "suspected", "confirmed"]


class SlotDrift(WireModel):
    """One slot's drift verdict in telemetry (protocol.drift; transitions are ``model_drift`` events)."""

    slot: Name
    state: DriftState
    moved: tuple[Name, ...] = Field(default=(), max_length=16, description="Signals over their thresholds")
    ratio: float = Field(ge=0.0, allow_inf_nan=False, description="Largest statistic / its threshold")
    frames: int = Field(ge=0, description="Frames in the window (the verdict waits for a full window)")


class Telemetry(WireModel):
    """Periodic gateway health, not kept through the outbox (the next sample supersedes it)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    gateway_id: GatewayId
    timestamp: AwareDatetime
    uptime_s: float = Field(ge=0)
    cpu_percent: float = Field(ge=0)
    memory_bytes: int = Field(ge=0, le=MAX_WIRE_INT)
    frames_in: int = Field(ge=0, le=MAX_WIRE_INT)
    inferences: int = Field(ge=0, le=MAX_WIRE_INT)
    frames_dropped: int = Field(ge=0, le=MAX_WIRE_INT)
    publish_errors: int = Field(ge=0, le=MAX_WIRE_INT)
    outbox_depth: int = Field(ge=0, le=MAX_WIRE_INT)
    outbox_bytes: int = Field(ge=0, le=MAX_WIRE_INT)
    drift: tuple[SlotDrift, ...] = Field(
        default=(), max_length=64, description="Per slot whose release carries a drift reference"
    )


EventValue = str | int | float | bool | None


def _details_hold_no_nul(details: dict[str, EventValue]) -> dict[str, EventValue]:
    # Checked here rather than in the union's str member, whose error would come buried
    # among one complaint per other member of the union.
    for key, value in details.items():
        if isinstance(value, str) and "\x00" in value:
            raise ValueError(f"value of {key!r} {_NUL_REFUSED}")
    return details


class EventItem(WireModel):
    """Something an operator may want to know about (OTA progress, outbox shedding, errors), as
    carried by the outbox: ``id`` is globally unique, ``seq`` per event stream."""

    id: UUID
    seq: int = Field(ge=1, le=MAX_WIRE_INT)
    timestamp: AwareDatetime
    level: Literal["info", "warning", "error"]
    kind: Name
    message: Text = Field(max_length=2000)
    details: dict[Text, EventValue] = Field(default_factory=dict)
    replayed: bool = False

    @field_validator("details")
    @classmethod
    def _values_hold_no_nul(cls, details: dict[str, EventValue]) -> dict[str, EventValue]:
        return _details_hold_no_nul(details)


class EventBatch(WireModel):
    """Events published together on the ``events`` channel, QoS 1, from the outbox's event stream.

    The event stream is a second stream of the same outbox (its own id and seqs), acknowledged by
    the same cumulative ``Ack``; the cloud stores each item once by its ``id``.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    gateway_id: GatewayId
    stream: str = Field(pattern=r"^[0-9a-f]{32}$", description="Event stream id (uuid4 hex)")
    sent_at: AwareDatetime
    items: tuple[EventItem, ...] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)
    oldest_held_seq: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WIRE_INT,
        description="Lowest seq of this stream the gateway still holds (see ResultBatch)",
    )

    @field_validator("items")
    @classmethod
    def _unique_seqs(cls, items: tuple[EventItem, ...]) -> tuple[EventItem, ...]:
        _check_unique_seqs([item.seq for item in items])
        return items

    @model_validator(mode="after")
    def _floor_below_items(self) -> EventBatch:
        _check_floor(self.oldest_held_seq, self.items)
        return self


# ---- encoding ------------------------------------------------------------------------------


class WireError(ValueError):
    """A payload that does not decode to the expected message; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


M = TypeVar("M", bound=WireModel)


def encode(message: WireModel) -> bytes:
    """Serialize a message to compact UTF-8 JSON."""
    return message.model_dump_json(exclude_none=False).encode()


def decode(model: type[M], payload: bytes) -> M:
    """Parse ``payload`` as ``model``; raise WireError with a reason an operator can act on."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit")
    _refuse_non_finite(payload)
    # Fast path for the common case: pydantic-core parses and validates in one pass, about twice
    # as fast as json.loads + validation. Anything it refuses takes the slow path below, which
    # explains exactly why; a valid message that leans on the schema_version default does too.
    try:
        fast = model.model_validate_json(payload)
    except ValidationError as exc:
        unreadable = next((e for e in exc.errors(include_url=False) if e["type"] == "json_invalid"), None)
        if unreadable is not None:
            # One parser decides what is JSON: json.loads below takes text pydantic refuses (a lone
            # surrogate escape), which no database or encoder downstream can store.
            raise WireError(f"not valid UTF-8 JSON: {unreadable['msg']}") from None
    else:
        if "schema_version" not in model.model_fields or "schema_version" in fast.model_fields_set:
            return fast
    try:
        raw: Any = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"not valid UTF-8 JSON: {exc}") from None
    except RecursionError:
        # json.loads recurses per level of nesting; no wire message nests more than a few levels.
        raise WireError("JSON nested too deeply to read") from None
    if not isinstance(raw, dict):
        raise WireError(f"expected a JSON object, got {type(raw).__name__}")
    if "schema_version" in model.model_fields:
        version = raw.get("schema_version")
        if version != SCHEMA_VERSION:
            raise WireError(f"unsupported schema_version {version!r} (this build speaks {SCHEMA_VERSION})")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise WireError(_summarize(exc)) from None


def _refuse_non_finite(payload: bytes) -> None:
    """JSON has no NaN or Infinity (an agent's encoder writes null), yet both parsers here read the
    bare words, and a receiver's database (PostgreSQL's JSON) refuses them later. The byte search
    keeps the second parse off the hot path: only a payload with such a word somewhere pays it."""
    if b"NaN" in payload or b"Infinity" in payload:
        try:
            pydantic_core.from_json(payload, allow_inf_nan=False)
        except ValueError as exc:
            raise WireError(f"not valid JSON (NaN and Infinity are not numbers in JSON): {exc}") from None


def _summarize(exc: ValidationError, limit: int = 5) -> str:
    errors = exc.errors(include_url=False)
    parts = []
    for err in errors[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{where}: {err['msg']}")
    more = f" (+{len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more
