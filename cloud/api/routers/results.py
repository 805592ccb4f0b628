"""Inference results: filtered, newest first, paged by offset or by cursor."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import SQLColumnExpression, select

from cloud.api.cursor import Keyset, newest_first_page
from cloud.api.deps import SessionDep
from cloud.api.filters import NOTES, TASK_HELP, TASK_SCHEMA, check_task, note_urgency
from cloud.api.params import MAX_OFFSET, Instant
from cloud.api.schemas import ResultPage, ResultPublic
from cloud.db.models import Result

router = APIRouter(prefix="/results", tags=["results"])
MAX_LIMIT = 1000
KEYS = Keyset(Result.captured_at, Result.id, dump_id=str, load_id=lambda raw: UUID(str(raw)))


@router.get("")
def list_results(
    session: SessionDep,
    gateway: Annotated[str | None, Query(description="Only results of this gateway")] = None,
    line: Annotated[str | None, Query(description="Only results of this line")] = None,
    task: Annotated[
        str | None,
        Query(description=TASK_HELP, json_schema_extra=TASK_SCHEMA),
    ] = None,
    model: Annotated[str | None, Query(description="Only results of this model name")] = None,
    label: Annotated[str | None, Query(description="Only results with this label")] = None,
    is_defect: Annotated[
        bool | None, Query(description="Only defective (true) or good (false) parts")
    ] = None,
    category: Annotated[
        str | None, Query(description="Only maintenance notes of this category (implies task=notes)")
    ] = None,
    urgency: Annotated[
        str | None, Query(description="Only maintenance notes of this urgency (implies task=notes)")
    ] = None,
    since: Annotated[Instant | None, Query(description="Captured at or after (ISO 8601 with zone)")] = None,
    until: Annotated[Instant | None, Query(description="Captured before (ISO 8601 with zone)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip (or use cursor)")] = 0,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> ResultPage:
    """Results, newest capture first."""
    if since is not None and until is not None and since >= until:
        raise HTTPException(
            422, detail=f"since ({since.isoformat()}) must be before until ({until.isoformat()})"
        )
    task = check_task(task)
    notes_only = category is not None or urgency is not None
    if notes_only and task not in (None, NOTES):
        raise HTTPException(422, detail=f"category and urgency filter notes; task {task!r} has neither")
    query = select(Result)
    filters: list[tuple[SQLColumnExpression[Any], object]] = [
        (Result.gateway_id, gateway),
        (Result.line, line),
        (Result.task, NOTES if notes_only else task),
        (Result.model_name, model),
        (Result.label, label),
        (Result.is_defect, is_defect),
        (Result.label, category),  # a note's label is its category
        (note_urgency(), urgency),
    ]
    for column, value in filters:
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(Result.captured_at >= since)
    if until is not None:
        query = query.where(Result.captured_at < until)
    rows, paging = newest_first_page(session, query, KEYS, cursor, offset, limit)
    return ResultPage(items=[ResultPublic.model_validate(r) for r in rows], **paging)
