"""Wire schemas: every message round-trips, and every kind of bad payload is refused with a reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from protocol.messages import (
    MAX_NOTE_CHARS,
    MAX_PAYLOAD_BYTES,
    RESULT_TASKS,
    Ack,
    DefectOutput,
    EventBatch,
    EventItem,
    GatewayState,
    NotesOutput,
    ParcelOutput,
    ResultBatch,
    TaskOutput,
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


def test_result_tasks_are_the_kinds_of_every_task_output() -> None:
    union, _ = get_args(TaskOutput)
    kinds = [output.model_fields["kind"].default for output in get_args(union)]
    assert sorted(RESULT_TASKS) == sorted(kinds)


def test_a_note_carries_its_words_bounded_and_older_agents_send_none() -> None:
    triage: dict[str, Any] = {"label": "safety", "score": 0.9, "category": "safety", "urgency": "high",
                              "urgency_score": 0.8}  # fmt: skip
    note = NotesOutput(**triage, text="Guard door\topen\nsee C:\\log")
    assert decode(NotesOutput, encode(note)).text == "Guard door\topen\nsee C:\\log"
    assert NotesOutput(**triage).text is None
    assert len(NotesOutput(**triage, text="x" * MAX_NOTE_CHARS).text or "") == MAX_NOTE_CHARS
    with pytest.raises(ValidationError, match=rf"text\n.* at most {MAX_NOTE_CHARS} "):
        NotesOutput(**triage, text="x" * (MAX_NOTE_CHARS + 1))
    with pytest.raises(ValidationError, match="NUL character"):
        NotesOutput(**triage, text="oil\x00leak")


def test_a_score_travels_with_what_it_was_judged_against_and_older_agents_send_none() -> None:
    defect = DefectOutput(label="anomaly", is_defect=True, score=0.58, raw_score=52.7, threshold=37.66)
    assert decode(DefectOutput, encode(defect)) == defect
    assert DefectOutput(label="good", is_defect=False, score=0.9).threshold is None
    parcel = ParcelOutput(label="reject", score=0.9, track_id=1, damaged=True, damage_score=0.7,
                          damage_threshold=0.44)  # fmt: skip
    assert decode(ParcelOutput, encode(parcel)) == parcel
    # NaN would go out as null and dead-letter the whole batch: refused where it is made, by name.
    with pytest.raises(ValidationError, match="raw_score"):
        DefectOutput(label="anomaly", is_defect=True, score=0.5, raw_score=float("nan"), threshold=1.0)
    with pytest.raises(ValidationError, match="raw_score"):
        DefectOutput(label="anomaly", is_defect=True, score=0.5, raw_score=-1.0, threshold=1.0)
    with pytest.raises(ValidationError, match="damage_threshold"):
        ParcelOutput(label="x", score=0.5, track_id=1, damage_threshold=float("inf"))
