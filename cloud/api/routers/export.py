"""CSV export of results, notes, dispositions and alerts over a range, streamed as it is read."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from cloud.api.auth import Viewer
from cloud.api.params import Instant
from cloud.export import KINDS, ExportRange, csv_chunks
from protocol.messages import utcnow

router = APIRouter(tags=["export"])
DEFAULT_RANGE = timedelta(days=1)
_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9_.-]")


@router.get(
    "/export/{kind}.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "Header row, then the rows oldest first"}},
)
def export_csv(
    request: Request,
    kind: Annotated[str, Path(description=f"What to export: {', '.join(KINDS)}")],
    who: Viewer,
    since: Annotated[Instant | None, Query(description="Start (default: until - 24 h)")] = None,
    until: Annotated[Instant | None, Query(description="End, exclusive (default: now)")] = None,
    line: Annotated[str | None, Query(description="Only this line")] = None,
    gateway: Annotated[str | None, Query(description="Only this gateway")] = None,
) -> StreamingResponse:
    """``kind`` (results, notes, dispositions or alerts) of ``[since, until)`` as CSV, streamed.

    The range bounds results and notes by capture time, dispositions by when they were set and
    alerts by when they opened. Columns and formats: ``cloud/export.py``.
    """
    export = KINDS.get(kind)
    if export is None:
        raise HTTPException(
            422, detail=f"kind: {kind!r} cannot be exported; choose one of {', '.join(KINDS)}"
        )
    end = until or utcnow()
    start = since or end - DEFAULT_RANGE
    if start >= end:
        raise HTTPException(
            422, detail=f"since ({start.isoformat()}) must be before until ({end.isoformat()})"
        )
    sessions: sessionmaker[Session] = request.app.state.sessions
    bounds = ExportRange(start, end, line, gateway)
    stamp = "%Y%m%dT%H%M%SZ"
    name = f"{kind}-{line or 'all'}-{start.astimezone(UTC):{stamp}}-{end.astimezone(UTC):{stamp}}.csv"
    return StreamingResponse(
        # A session of its own: the request's is closed once the route returns, before the rows go.
        csv_chunks(sessions, export, bounds),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_UNSAFE_IN_FILENAME.sub("_", name)}"'},
    )
