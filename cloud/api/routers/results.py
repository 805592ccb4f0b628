"""Inference results: filtered, newest first, paged by offset or by cursor."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime
from sqlalchemy import select

from cloud.api.cursor import after_cursor, decode_cursor, encode_cursor, fetch_page
from cloud.api.deps import SessionDep
from cloud.api.schemas import ResultPage, ResultPublic
from cloud.db.models import Result

router = APIRouter(prefix="/results", tags=["results"])
MAX_LIMIT = 1000


def _decode(cursor: str) -> tuple[datetime, UUID]:
    at, raw_id = decode_cursor(cursor)
    try:
        return at, UUID(str(raw_id))
    except ValueError as exc:
        raise HTTPException(422, detail=f"cursor {cursor[:40]!r} is not valid: {exc}") from None


@router.get("")
def list_results(
    session: SessionDep,
    gateway: Annotated[str | None, Query(description="Only results of this gateway")] = None,
    line: Annotated[str | None, Query(description="Only results of this line")] = None,
    model: Annotated[str | None, Query(description="Only results of this model name")] = None,
    label: Annotated[str | None, Query(description="Only results with this label")] = None,
    is_defect: Annotated[
        bool | None, Query(description="Only defective (true) or good (false) parts")
    ] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="Captured at or after (ISO 8601 with zone)")
    ] = None,
    until: Annotated[AwareDatetime | None, Query(description="Captured before (ISO 8601 with zone)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = 100,
    offset: Annotated[int, Query(ge=0, description="Rows to skip (or use cursor)")] = 0,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> ResultPage:
    """Results, newest capture first."""
    if since is not None and until is not None and since >= until:
        raise HTTPException(
            422, detail=f"since ({since.isoformat()}) must be before until ({until.isoformat()})"
        )
    if cursor is not None and offset:
        raise HTTPException(422, detail="use either cursor or offset, not both")
    query = select(Result).order_by(Result.captured_at.desc(), Result.id.desc())
    filters = {
        Result.gateway_id: gateway,
        Result.line: line,
        Result.model_name: model,
        Result.label: label,
        Result.is_defect: is_defect,
    }
    for column, value in filters.items():
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(Result.captured_at >= since)
    if until is not None:
        query = query.where(Result.captured_at < until)
    if cursor is not None:
        at, after_id = _decode(cursor)
        query = query.where(after_cursor(Result.captured_at, Result.id, at, after_id))
    rows, more = fetch_page(session, query, offset, limit)
    items = [ResultPublic.model_validate(r) for r in rows]
    return ResultPage(
        items=items,
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more and cursor is None else None,
        next_cursor=encode_cursor(items[-1].captured_at, str(items[-1].id)) if more else None,
    )
