"""The Line page (charts over a range, defects by type, gallery), its stream and the gallery's pictures,
the operators' dispositions of gallery pictures, and the page's CSV exports.

What it shows and how its stream finds changes: :mod:`cloud.console.line_view`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse

from cloud.console.api import ApiClient, ApiError
from cloud.console.demo_look import demo_look_context
from cloud.console.deps import VIEWS, CurrentUser, FormUser
from cloud.console.line_view import LineFeed, line_context, range_start
from cloud.console.relay import stream_get
from cloud.console.respond import error_page, plain_refusal, render_page, to_login
from cloud.console.session import User, form
from cloud.console.stream import stream_response
from protocol.messages import utcnow

router = APIRouter()
# live.js sends this with a disposition form: the answer is then the tile's disposition block, not a page.
FRAGMENT_HEADER = "x-console-fragment"


@router.get("/lines/{line}")
async def line(request: Request, line: str, range: str = "1h") -> Response:
    async def build(api: ApiClient, user: User) -> dict[str, Any]:
        context = await line_context(api, line, range, user.is_operator)
        return {**context, **await demo_look_context(request, line, user)}  # demo profile only

    return await render_page(request, "line.html", build)


@router.get("/console/lines/{line}/events")
async def line_events(
    request: Request, user: CurrentUser, line: str, range: str = "1h", limit: int | None = None
) -> Response:
    """Server-sent ``line`` events: changed chart, totals and breakdown, new and redrawn gallery tiles."""
    feed = LineFeed(line, range, VIEWS.get_template("line_parts.html"), user.is_operator)
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


@router.post("/lines/{line}/dispositions/{result_id}")
async def set_disposition(request: Request, user: FormUser, line: str, result_id: str) -> Response:
    """A gallery tile's disposition form: sent to the API as the user; the tile's disposition block
    comes back (to live.js), or the Line page again (a plain form post)."""
    fragment = request.headers.get(FRAGMENT_HEADER) == "disposition"
    if user is None:
        return PlainTextResponse(plain_refusal(401, ""), status_code=401) if fragment else to_login()
    fields = await form(request)
    body = {"disposition": fields.get("disposition", ""), "note": fields.get("note") or None}
    async with ApiClient(request.app, user.token) as api:
        try:
            answer = await api.request("PUT", f"/results/{quote(result_id, safe='')}/disposition", json=body)
        except ApiError as exc:
            if fragment:
                return PlainTextResponse(plain_refusal(exc.status, _reason(exc)), status_code=exc.status)
            return error_page(request, user, exc)
    if fragment:
        tile = {"id": result_id, "line": line, "can_act": user.is_operator, "disposition": answer.json()}
        return HTMLResponse(str(VIEWS.get_template("line_parts.html").module.disposition_block(tile)))  # type: ignore[attr-defined]
    return RedirectResponse(_back(request, line), status_code=303)


@router.get("/console/lines/{line}/export/{kind}.csv")
async def export_csv(
    request: Request, user: CurrentUser, line: str, kind: str, range: str = "1h"
) -> Response:
    """The page's range of ``kind`` as CSV, streamed from the API as the user (see relay.py)."""
    now = utcnow()
    since, _ = range_start(range, now)
    params = {"line": line, "since": since.isoformat(), "until": now.isoformat()}
    try:
        return await stream_get(request.app, user.token, f"/export/{quote(kind, safe='')}.csv", params)
    except ApiError as exc:
        return error_page(request, user, exc)


def _reason(exc: ApiError) -> str:
    """The API's refusal in one line: a validation list as 'field: message; ...'."""
    if not isinstance(exc.errors, list):
        return exc.detail
    found = [e for e in exc.errors if isinstance(e, dict)]
    return "; ".join(f"{e.get('loc', ['?'])[-1]}: {e.get('msg', 'invalid')}" for e in found) or exc.detail


def _back(request: Request, line: str) -> str:
    """The Line page the form was on (its range kept), from the Referer; else the line's page."""
    page = f"/lines/{quote(line, safe='')}"
    sent = urlsplit(request.headers.get("referer", ""))
    return f"{sent.path}?{sent.query}" if sent.path == page and sent.query else page
