"""Dispositions: operators judge flagged results; anyone who reads may list them (labelled data)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from sqlalchemy import select

from cloud.api.auth import Operator, Viewer
from cloud.api.cursor import Keyset, newest_first_page
from cloud.api.deps import SessionDep
from cloud.api.params import MAX_OFFSET, Instant
from cloud.api.schemas import DispositionPage
from cloud.db.models import Disposition, Result
from cloud.dispositions import service
from cloud.dispositions.labelled import jsonl, labelled_notes
from cloud.dispositions.schemas import DispositionKind, DispositionPublic, DispositionSet

router = APIRouter(tags=["dispositions"])
MAX_LIMIT = 1000
KEYS = Keyset(Disposition.at, Disposition.result_id, dump_id=str, load_id=lambda raw: UUID(str(raw)))


@router.put("/results/{result_id}/disposition", responses={404: {"description": "Unknown result"}})
def set_disposition(
    result_id: UUID, body: DispositionSet, session: SessionDep, who: Operator
) -> DispositionPublic:
    """Give a result its disposition, replacing the current one (operator or admin; audited).

    ``confirmed_defect`` and ``false_reject`` judge the model's flag, so they need a flagged result
    (a defect, or a damaged parcel): on another result they are refused with 422. ``needs_review``
    may be given to any result. ``labelled`` with ``true_label`` names a note's right category.
    """
    try:
        disposition = service.set_disposition(session, result_id, body, who)
    except service.NotFound as exc:
        raise HTTPException(404, detail=str(exc)) from None
    except (service.NotFlagged, service.BadLabel) as exc:
        raise HTTPException(422, detail=str(exc)) from None
    session.commit()
    return DispositionPublic.model_validate(disposition)


@router.get("/results/{result_id}/disposition", responses={404: {"description": "No disposition"}})
def get_disposition(result_id: UUID, session: SessionDep, who: Viewer) -> DispositionPublic:
    """A result's current disposition; 404 when it has none (or there is no such result)."""
    disposition = session.get(Disposition, result_id)
    if disposition is None:
        known = session.scalar(select(Result.id).where(Result.id == result_id))
        what = "has no disposition" if known is not None else "not found"
        raise HTTPException(404, detail=f"result {result_id} {what}")
    return DispositionPublic.model_validate(disposition)


@router.get("/dispositions")
def list_dispositions(
    session: SessionDep,
    who: Viewer,
    line: Annotated[str | None, Query(description="Only results of this line")] = None,
    gateway: Annotated[str | None, Query(description="Only results of this gateway")] = None,
    disposition: Annotated[DispositionKind | None, Query(description="Only this disposition")] = None,
    model: Annotated[str | None, Query(description="Only results of this model name")] = None,
    model_version: Annotated[str | None, Query(description="Only results of this model version")] = None,
    since: Annotated[Instant | None, Query(description="Set at or after (ISO 8601 with zone)")] = None,
    until: Annotated[Instant | None, Query(description="Set before (ISO 8601 with zone)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip (or use cursor)")] = 0,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> DispositionPage:
    """Current dispositions, most recently set first; ``since``/``until`` bound when they were set."""
    if since is not None and until is not None and since >= until:
        raise HTTPException(
            422, detail=f"since ({since.isoformat()}) must be before until ({until.isoformat()})"
        )
    query = select(Disposition)
    filters = {
        Disposition.line: line,
        Disposition.gateway_id: gateway,
        Disposition.disposition: disposition.value if disposition is not None else None,
        Disposition.model_name: model,
        Disposition.model_version: model_version,
    }
    for column, value in filters.items():
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(Disposition.at >= since)
    if until is not None:
        query = query.where(Disposition.at < until)
    rows, paging = newest_first_page(session, query, KEYS, cursor, offset, limit)
    return DispositionPage(items=[DispositionPublic.model_validate(d) for d in rows], **paging)


@router.get(
    "/notes/labelled.jsonl",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "One labelled note a line"}},
)
def export_labelled_notes(
    session: SessionDep,
    who: Viewer,
    line: Annotated[str | None, Query(description="Only notes of this line")] = None,
    since: Annotated[Instant | None, Query(description="Labelled at or after (ISO 8601 with zone)")] = None,
    until: Annotated[Instant | None, Query(description="Labelled before (ISO 8601 with zone)")] = None,
) -> Response:
    """Notes operators labelled (``labelled`` dispositions), oldest label first, as JSONL: the extra
    training data of ``factory-models train notes --extra FILE``. Fields: ``cloud/dispositions/labelled.py``."""
    if since is not None and until is not None and since >= until:
        raise HTTPException(
            422, detail=f"since ({since.isoformat()}) must be before until ({until.isoformat()})"
        )
    body = jsonl(labelled_notes(session, line, since, until))
    return Response(body, media_type="application/x-ndjson; charset=utf-8")
