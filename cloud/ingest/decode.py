"""Turn raw MQTT messages into typed wire messages or dead letters. No I/O here."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from protocol.messages import (
    MAX_PAYLOAD_BYTES,
    MAX_WIRE_INT,
    SCHEMA_VERSION,
    EventBatch,
    GatewayState,
    ResultBatch,
    Telemetry,
    WireError,
    WireModel,
    decode,
)
from protocol.ota import ReportedState
from protocol.topics import Channel, TopicError, TopicSpace

# Channels the ingest worker stores; the rest are the cloud's own output (ack, desired) and are
# ignored here, not dead-lettered.
CHANNEL_MODELS: dict[Channel, type[WireModel]] = {
    Channel.RESULTS: ResultBatch,
    Channel.STATE: GatewayState,
    Channel.TELEMETRY: Telemetry,
    Channel.EVENTS: EventBatch,
    Channel.REPORTED: ReportedState,
}
IGNORED_CHANNELS = frozenset({Channel.ACK, Channel.DESIRED, Channel.CAPTURES})
log = logging.getLogger(__name__)

# Dead-letter reason codes: a small fixed set, so they can label a Prometheus counter.
REASON_OVERSIZE = "oversize"
REASON_BAD_JSON = "bad_json"
REASON_SCHEMA_VERSION = "schema_version"
REASON_INVALID = "invalid"
REASON_UNKNOWN_TOPIC = "unknown_topic"
REASON_GATEWAY_MISMATCH = "gateway_mismatch"
REASON_CODES = (
    REASON_OVERSIZE,
    REASON_BAD_JSON,
    REASON_SCHEMA_VERSION,
    REASON_INVALID,
    REASON_UNKNOWN_TOPIC,
    REASON_GATEWAY_MISMATCH,
)


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message as received from the broker."""

    topic: str
    payload: bytes
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Decoded:
    """A valid message of one of the stored channels."""

    channel: Channel
    gateway_id: str
    message: WireModel
    received_at: datetime
    topic: str = ""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that failed validation, with a reason code and an operator-readable reason."""

    topic: str
    reason_code: str
    reason: str
    payload: bytes
    received_at: datetime
    gateway_id: str | None = None
    stream: str | None = None
    seq: int | None = None


def classify(inbound: Inbound, topics: TopicSpace) -> Decoded | Rejected | None:
    """Decode ``inbound``; None for channels this worker deliberately ignores."""
    try:
        parsed = topics.parse(inbound.topic)
    except TopicError as exc:
        return _reject(inbound, REASON_UNKNOWN_TOPIC, str(exc), None)
    if parsed.channel in IGNORED_CHANNELS:
        return None
    message: WireModel
    try:
        message = decode(CHANNEL_MODELS[parsed.channel], inbound.payload)
    except WireError as exc:
        # Only a refused payload is parsed a second time, to name the reason for the counter: on
        # the hot path that extra json.loads cost as much as a third of the validation itself.
        code = _precheck(inbound.payload)
        return _reject(inbound, code or REASON_INVALID, exc.reason, parsed.gateway_id)
    except Exception as exc:  # noqa: BLE001 - no payload may stop the worker's decode thread
        log.exception("message on %s broke the decoder; dead-lettered", inbound.topic)
        return _reject(inbound, REASON_INVALID, f"unreadable ({type(exc).__name__})", parsed.gateway_id)
    payload_gateway = getattr(message, "gateway_id", None)
    if payload_gateway != parsed.gateway_id:
        reason = (
            f"gateway id {payload_gateway!r} in the payload differs from {parsed.gateway_id!r} in the topic"
        )
        return _reject(inbound, REASON_GATEWAY_MISMATCH, reason, parsed.gateway_id)
    return Decoded(parsed.channel, parsed.gateway_id, message, inbound.received_at, inbound.topic)


def _precheck(payload: bytes) -> str | None:
    """The reason code decode() would fail with, for the counter; None when it is a schema error."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return REASON_OVERSIZE
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return REASON_BAD_JSON
    if not isinstance(raw, dict):
        return REASON_BAD_JSON
    if raw.get("schema_version") != SCHEMA_VERSION:
        return REASON_SCHEMA_VERSION
    return None


def _reject(inbound: Inbound, code: str, reason: str, topic_gateway: str | None) -> Rejected:
    gateway_id, stream, seq = _best_effort_ids(inbound.payload)
    return Rejected(
        topic=inbound.topic,
        reason_code=code,
        reason=reason,
        payload=inbound.payload,
        received_at=inbound.received_at,
        gateway_id=topic_gateway or gateway_id,
        stream=stream,
        seq=seq,
    )


def _best_effort_ids(payload: bytes) -> tuple[str | None, str | None, int | None]:
    """Pull gateway id, stream and lowest seq out of a payload that failed validation."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None, None, None
    try:
        raw: Any = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None, None, None
    if not isinstance(raw, dict):
        return None, None, None
    gateway_id = raw.get("gateway_id")
    stream = raw.get("stream")
    items = raw.get("items")
    seqs = []
    if isinstance(items, list):
        # Only a seq the dead_letters column can hold: a refused message is parked, never retried.
        seqs = [
            i["seq"]
            for i in items
            if isinstance(i, dict) and type(i.get("seq")) is int and 0 <= i["seq"] <= MAX_WIRE_INT
        ]
    return (
        gateway_id[:64] if isinstance(gateway_id, str) else None,
        stream[:32] if isinstance(stream, str) else None,
        min(seqs) if seqs else None,
    )
