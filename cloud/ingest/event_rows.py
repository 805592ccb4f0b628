"""Rows of the ``events`` table from the two wire forms of a gateway event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from protocol.messages import Event, EventBatch


def event_row(msg: Event, received_at: datetime) -> dict[str, Any]:
    """A plain event (an agent without the outbox event stream): no id, stream or seq."""
    return {
        "gateway_id": msg.gateway_id,
        "timestamp": msg.timestamp,
        "received_at": received_at,
        "level": msg.level,
        "kind": msg.kind,
        "message": msg.message,
        "details": dict(msg.details),
        "event_id": None,
        "stream": None,
        "seq": None,
    }


def event_item_rows(batch: EventBatch, received_at: datetime) -> list[dict[str, Any]]:
    """The items of an event batch, each with its unique id and its place in the stream."""
    return [
        {
            "gateway_id": batch.gateway_id,
            "timestamp": item.timestamp,
            "received_at": received_at,
            "level": item.level,
            "kind": item.kind,
            "message": item.message,
            "details": dict(item.details),
            "event_id": item.id,
            "stream": batch.stream,
            "seq": item.seq,
        }
        for item in batch.items
    ]
