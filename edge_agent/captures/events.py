"""A capture's steps as gateway events (``protocol.captures.CAPTURE_EVENT_KIND``) and log lines."""

from __future__ import annotations

import logging
from collections.abc import Callable

from edge_agent.captures.store import CaptureRecord
from edge_agent.outbox_streams import EventDraft, EventLevel
from protocol.captures import CAPTURE_EVENT_KIND
from protocol.messages import wire_text

log = logging.getLogger(__name__)
LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def report(
    emit: Callable[[EventDraft], None], record: CaptureRecord, step: str, level: EventLevel, said: str
) -> None:
    """Log ``step`` of ``record`` and queue it as an event (durable, through the outbox)."""
    message = f"capture {record.capture_id} on slot {record.slot}: {step}: {said}"
    log.log(LOG_LEVELS[level], "captures: %s", message)
    emit(
        EventDraft(
            kind=CAPTURE_EVENT_KIND,
            level=level,
            message=wire_text(message, 2000),
            details={
                "capture_id": record.capture_id,
                "slot": record.slot,
                "step": step,
                "frames": len(record.files),
                "bytes": record.bytes,
                "reason": record.reason,
            },
        )
    )
