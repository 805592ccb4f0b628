"""Wire schemas: every message round-trips, and every kind of bad payload is refused with a reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.messages import (
    MAX_PAYLOAD_BYTES,
    Ack,
    EventBatch,
    EventItem,
    GatewayState,
    ResultBatch,
    Telemetry,
    WireError,
    WireModel,
    decode,
    encode,
    version_key,
    wire_text,
)
from tests.support import strategies as s


@given(s.all_messages)
def test_every_message_round_trips(message: WireModel) -> None:
    assert decode(type(message), encode(message)) == message


@given(s.batches)
def test_batch_json_is_plain_and_versioned(batch: ResultBatch) -> None:
    raw = json.loads(encode(batch))
    assert raw["schema_version"] == 1
    assert all(isinstance(item["id"], str) for item in raw["items"])


def _valid_batch() -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "schema_version": 1,
        "gateway_id": "gw-1",
        "stream": uuid.uuid4().hex,
        "sent_at": now,
        "items": [
            {
                "id": str(uuid.uuid4()),
                "seq": 1,
                "captured_at": now,
                "inferred_at": now,
                "line": "line-1",
                "station": "st-1",
                "source": "cam1",
                "frame": "frame_000001.png",
                "model": {"name": "defect-cnn", "version": "1.0.0", "sha256": "a" * 64},
                "output": {"kind": "defect", "label": "good", "is_defect": False, "score": 0.9},
                "latency_ms": 3.5,
            }
        ],
    }


def test_valid_batch_decodes() -> None:
    batch = decode(ResultBatch, json.dumps(_valid_batch()).encode())
    assert batch.items[0].replayed is False


def _mutate(path: list[Any], value: Any) -> bytes:
    raw = _valid_batch()
    target: Any = raw
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(raw).encode()


_DELETE = object()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "not valid UTF-8 JSON"),
        (b"\xff\xfe", "not valid UTF-8 JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (_mutate(["schema_version"], 2), "unsupported schema_version 2"),
        (_mutate(["schema_version"], _DELETE), "unsupported schema_version None"),
        (_mutate(["items"], []), "items"),
        (_mutate(["items", 0, "seq"], 0), "items.0.seq"),
        (_mutate(["items", 0, "id"], "nope"), "items.0.id"),
        (_mutate(["items", 0, "model", "sha256"], "XYZ"), "items.0.model.sha256"),
        (_mutate(["items", 0, "output", "kind"], "poem"), "items.0.output"),
        (_mutate(["items", 0, "captured_at"], "2026-01-01T00:00:00"), "items.0.captured_at"),
        (_mutate(["items", 0, "latency_ms"], _DELETE), "items.0.latency_ms"),
        (_mutate(["gateway_id"], "a/b"), "gateway_id"),
        (_mutate(["stream"], "short"), "stream"),
        (_mutate(["surprise"], 1), "surprise"),
        (_mutate(["oldest_held_seq"], 2), "oldest_held_seq is above"),
        (_mutate(["oldest_held_seq"], 0), "oldest_held_seq"),
        (_mutate(["items", 0, "frame"], "cam\x00.jpg"), "items.0.frame: Value error, contains a NUL"),
    ],
)
def test_bad_batches_refused_with_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError) as info:
        decode(ResultBatch, payload)
    assert reason in info.value.reason


def test_duplicate_seqs_refused() -> None:
    raw = _valid_batch()
    raw["items"].append(dict(raw["items"][0], id=str(uuid.uuid4())))
    with pytest.raises(WireError, match="duplicate seq"):
        decode(ResultBatch, json.dumps(raw).encode())


def test_oversize_payload_refused_before_parsing() -> None:
    with pytest.raises(WireError, match="exceeds"):
        decode(ResultBatch, b" " * (MAX_PAYLOAD_BYTES + 1))


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_decoding(payload: bytes) -> None:
    # Only WireError may escape: anything else would crash an ingest worker.
    for model in (GatewayState, ResultBatch, Ack, Telemetry, EventBatch):
        reasons: list[str] = []
        try:
            decode(model, payload)
        except WireError as exc:
            reasons.append(exc.reason)
        assert all(reasons)


def test_messages_are_frozen() -> None:
    ack = Ack(gateway_id="gw", stream="0" * 32, acked_seq=3, committed_at=datetime.now(UTC))
    with pytest.raises(ValueError, match="frozen"):
        ack.acked_seq = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    ("low", "high"), [("1", "2"), ("1.2", "1.10"), ("1.9.9", "2"), ("0.0.1", "0.1"), ("1", "1.0.1")]
)
def test_version_order(low: str, high: str) -> None:
    assert version_key(low) < version_key(high)
    assert version_key("1") == version_key("1.0.0")


@given(st.text(), st.integers(min_value=1, max_value=300))
def test_wire_text_makes_any_text_fit_a_text_field(text: str, limit: int) -> None:
    shown = wire_text(text, limit)
    assert len(shown) <= limit
    assert not any(ch < " " and ch not in "\t\n" for ch in shown)
    event = EventItem(
        id=uuid.uuid4(), seq=1, timestamp=datetime.now(UTC), level="info", kind="k", message=shown[:2000]
    )
    assert decode(EventItem, encode(event)).message == shown
    if len(text) <= limit and all(ch >= " " for ch in text):
        assert shown == text  # printable text that fits goes through unchanged


def test_wire_text_spells_out_control_characters() -> None:
    assert wire_text("01\x1d02\x00", 50) == "01\\x1d02\\x00"
