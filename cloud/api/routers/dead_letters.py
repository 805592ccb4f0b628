"""Dead letters: messages that failed validation, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from cloud.api.deps import SessionDep
from cloud.api.params import MAX_OFFSET
from cloud.api.schemas import DeadLetterPage, DeadLetterPublic
from cloud.db.models import DeadLetter

router = APIRouter(prefix="/dead-letters", tags=["dead letters"])
PREVIEW_BYTES = 512


@router.get("")
def list_dead_letters(
    session: SessionDep,
    gateway: Annotated[str | None, Query(description="Only this gateway")] = None,
    reason: Annotated[str | None, Query(description="Only this reason code, e.g. bad_json")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip")] = 0,
) -> DeadLetterPage:
    """Rejected messages with their topic and reason."""
    query = select(DeadLetter).order_by(DeadLetter.received_at.desc(), DeadLetter.id.desc())
    if gateway is not None:
        query = query.where(DeadLetter.gateway_id == gateway)
    if reason is not None:
        query = query.where(DeadLetter.reason_code == reason)
    rows = session.scalars(query.offset(offset).limit(limit + 1)).all()
    items = [
        DeadLetterPublic(
            id=d.id,
            received_at=d.received_at,
            topic=d.topic,
            reason_code=d.reason_code,
            reason=d.reason,
            payload_size=d.payload_size,
            payload_preview=d.payload[:PREVIEW_BYTES].decode("utf-8", errors="replace"),
            gateway_id=d.gateway_id,
            stream=d.stream,
            seq=d.seq,
        )
        for d in rows[:limit]
    ]
    more = len(rows) > limit
    return DeadLetterPage(
        items=items, limit=limit, offset=offset, next_offset=offset + limit if more else None
    )
