"""Rows of the ``events`` table from a gateway's event batch."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from protocol.messages import EventBatch


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
