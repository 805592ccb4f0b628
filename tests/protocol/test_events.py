"""The event stream's wire form: EventBatch, the only form of a gateway event on the wire."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given

from protocol.messages import EventBatch, WireError, decode, encode
from tests.support import strategies as s

T = "2026-01-05T08:00:00+00:00"


def _item(seq: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "seq": seq,
        "timestamp": T,
        "level": "error",
        "kind": "ota",
        "message": "m",
        **extra,
    }


def _batch(items: list[dict[str, Any]], **extra: Any) -> bytes:
    raw = {
        "schema_version": 1,
        "gateway_id": "gw-1",
        "stream": "a" * 32,
        "sent_at": T,
        "items": items,
        **extra,
    }
    return json.dumps(raw).encode()


@given(s.event_batches)
def test_event_batches_round_trip(batch: EventBatch) -> None:
    assert decode(EventBatch, encode(batch)) == batch


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (_batch([_item(1), _item(1)]), "duplicate seq"),
        (_batch([_item(2)], oldest_held_seq=3), "oldest_held_seq is above"),
        (_batch([_item(0)]), "items.0.seq"),
        (_batch([_item(1, kind="no spaces")]), "items.0.kind"),
        (_batch([_item(1, details={"k": "a\u0000b"})]), "NUL"),
        (_batch([]), "items"),
        (_batch([_item(1)], stream="not-hex"), "stream"),
        (_batch([_item(1, id="nope")]), "items.0.id"),
    ],
)
def test_bad_event_batches_are_refused_naming_what_is_wrong(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError, match=reason):
        decode(EventBatch, payload)


def test_an_event_item_needs_an_aware_timestamp() -> None:
    naive = datetime(2026, 1, 5, 8, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(WireError, match="items.0.timestamp"):
        decode(EventBatch, _batch([_item(1, timestamp=naive.isoformat())]))
