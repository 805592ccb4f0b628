"""Console routes: login/logout, the live Overview (SSE), static assets and the thumbnail proxy.

The Line and Rollout pages with their own streams live in :mod:`cloud.console.live`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from cloud.console import pages
from cloud.console.api import ApiClient, ApiError
from cloud.console.live import add_live_pages
from cloud.console.render import HERE, templates
from cloud.console.session import check_origin, clear_login, current_user, form, revoke, set_login
from cloud.console.summary import overview

log = logging.getLogger(__name__)

# The console's icon: a dark tile with a check mark, inline (no binary asset to ship).
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
    'fill="#1d2430"/><path d="M4 8.5l2.5 2.5L12 5" fill="none" stroke="#fff" stroke-width="2"/></svg>'
)
STATIC = {"console.css": "text/css", "console.js": "text/javascript", "live.js": "text/javascript"}


def _safe_next(target: str) -> str:
    # Only same-site paths: '//evil.example' or 'https://...' would turn login into an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/"


def make_router(refresh_s: float = 3.0) -> APIRouter:
    """The console's router; ``refresh_s`` is how often the live streams (Overview, Line, Rollout(s)) tick."""
    router = APIRouter(include_in_schema=False)
    views = templates()

    @router.get("/login")
    async def login_form(request: Request, next: str = "/") -> HTMLResponse:  # noqa: A002
        return views.TemplateResponse(request, "login.html", {"user": None, "next": _safe_next(next)})

    @router.post("/login")
    async def login(request: Request) -> Response:
        check_origin(request)
        fields = await form(request)
        username, password = fields.get("username", ""), fields.get("password", "")
        next = fields.get("next", "/")  # noqa: A001
        async with ApiClient(request.app, None) as api:
            try:
                answer = await api.post("/auth/login", {"username": username, "password": password})
            except ApiError as exc:
                context = {"user": None, "next": _safe_next(next), "error": exc.detail, "username": username}
                return views.TemplateResponse(request, "login.html", context, status_code=exc.status)
        response = RedirectResponse(_safe_next(next), status_code=303)
        set_login(request, response, answer["token"])
        log.info("console login: %s (%s)", username, answer["role"])
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        check_origin(request)
        user = await current_user(request)
        if user is not None:
            await revoke(request, user.token)
        response = RedirectResponse("/login", status_code=303)
        clear_login(response)
        return response

    @router.get("/console/events")
    async def events(request: Request, limit: int | None = None) -> Response:
        """Server-sent events: a fresh Overview summary every ``refresh_s`` (``limit`` ends the stream)."""
        user = await current_user(request)
        if user is None:
            raise HTTPException(401, "log in to the console first")

        async def stream() -> AsyncIterator[str]:
            sent = 0
            async with ApiClient(request.app, user.token) as api:
                while limit is None or sent < limit:
                    try:
                        data = await overview(api)
                    except ApiError as exc:  # e.g. the token was revoked meanwhile
                        yield f"event: gone\ndata: {json.dumps(exc.detail)}\n\n"
                        return
                    yield f"event: summary\ndata: {json.dumps(data)}\n\n"
                    sent += 1
                    if limit is None or sent < limit:
                        await asyncio.sleep(refresh_s)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    @router.get("/console/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404, f"no console asset {name!r}")
        body = (HERE / "static" / name).read_bytes()
        return Response(body, media_type=STATIC[name], headers={"Cache-Control": "max-age=300"})

    @router.get("/favicon.ico")
    async def favicon() -> Response:
        """A tiny SVG icon, so browsers' automatic request gets no 404 (base.html links it too)."""
        return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    @router.get("/console/thumbnails/{result_id}")
    async def thumbnail(request: Request, result_id: str) -> Response:
        """A defect crop through the API, with the cookie's token (an <img> cannot send a bearer)."""
        user = await current_user(request)
        if user is None:
            raise HTTPException(401, "log in to the console first")
        async with ApiClient(request.app, user.token) as api:
            try:
                answer = await api.request("GET", f"/results/{quote(result_id)}/thumbnail")
            except ApiError as exc:
                raise HTTPException(exc.status, exc.detail) from None
        return Response(answer.content, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    add_live_pages(router, views, refresh_s)
    pages.add_pages(router, views)
    return router
