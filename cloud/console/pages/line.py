"""The Line page (charts over a range, defects by type, gallery), its stream and the gallery's pictures.

What it shows and how its stream finds changes: :mod:`cloud.console.line_view`.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response

from cloud.console.api import ApiClient, ApiError
from cloud.console.deps import VIEWS, CurrentUser
from cloud.console.line_view import LineFeed, line_context
from cloud.console.respond import render_page
from cloud.console.stream import stream_response

router = APIRouter()


@router.get("/lines/{line}")
async def line(request: Request, line: str, range: str = "1h") -> Response:
    return await render_page(request, "line.html", lambda api, _u: line_context(api, line, range))


@router.get("/console/lines/{line}/events")
async def line_events(
    request: Request, user: CurrentUser, line: str, range: str = "1h", limit: int | None = None
) -> Response:
    """Server-sent ``line`` events: changed chart, totals and breakdown, and new gallery entries."""
    feed = LineFeed(line, range, VIEWS.get_template("line_parts.html"))
    return stream_response(request, user, feed, "line", limit)


@router.get("/console/thumbnails/{result_id}")
async def thumbnail(request: Request, user: CurrentUser, result_id: str) -> Response:
    """A defect crop through the API, with the cookie's token (an <img> cannot send a bearer)."""
    async with ApiClient(request.app, user.token) as api:
        try:
            answer = await api.request("GET", f"/results/{quote(result_id)}/thumbnail")
        except ApiError as exc:
            raise HTTPException(exc.status, exc.detail) from None
    return Response(answer.content, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})
