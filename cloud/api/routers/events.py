"""Gateway events across the fleet: filtered, newest first, paged by offset or by cursor."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select

from cloud.api.cursor import Keyset, newest_first_page
from cloud.api.deps import SessionDep
from cloud.api.params import MAX_OFFSET, Instant
from cloud.api.schemas import EventPublic, FleetEventPage
from cloud.db.models import Event, Gateway

router = APIRouter(prefix="/events", tags=["events"])
MAX_LIMIT = 1000


def _event_id(raw: object) -> int:
    if not isinstance(raw, int):
        raise ValueError("not made by this API")
    return raw


KEYS = Keyset(Event.timestamp, Event.id, dump_id=int, load_id=_event_id)


@router.get("", responses={404: {"description": "Unknown gateway"}})
def list_events(
    session: SessionDep,
    gateway: Annotated[str | None, Query(description="Only events of this gateway")] = None,
    kind: Annotated[str | None, Query(description="Only this kind, e.g. ota or outbox_shed")] = None,
    level: Annotated[Literal["info", "warning", "error"] | None, Query(description="Only this level")] = None,
    since: Annotated[Instant | None, Query(description="Happened at or after (ISO 8601 with zone)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Events to skip (or use cursor)")] = 0,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> FleetEventPage:
    """What gateways reported (OTA steps, outbox shedding, errors), newest first across the fleet."""
    if gateway is not None and session.get(Gateway, gateway) is None:
        raise HTTPException(404, detail=f"gateway {gateway!r} not found")
    query = select(Event)
    for column, value in ((Event.gateway_id, gateway), (Event.kind, kind), (Event.level, level)):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(Event.timestamp >= since)
    rows, paging = newest_first_page(session, query, KEYS, cursor, offset, limit)
    return FleetEventPage(items=[EventPublic.model_validate(e) for e in rows], **paging)
