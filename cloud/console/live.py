"""The live Line, Rollout and Rollouts pages, their SSE streams, and the rollout forms (create, pause/resume/abort).

The streams of the Gateways pages (whose pages are in :mod:`cloud.console.pages`) are here too.

Every stream reads through the API with the logged-in user's token, one batch of calls per tick,
and sends only the page fragments that changed. When the token stops working (logout, expiry,
revocation) the stream says ``gone`` and ends, as the Overview's does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Protocol
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from fastapi.templating import Jinja2Templates

from cloud.console import respond, rollout_form, rollout_view
from cloud.console.api import ApiClient, ApiError
from cloud.console.gateway_view import GatewayFeed, GatewaysFeed
from cloud.console.line_view import LineFeed, line_context
from cloud.console.respond import Build
from cloud.console.session import User, check_origin, current_user, form


class Feed(Protocol):
    """One page's live updates: ``tick`` returns what changed (None: nothing did)."""

    async def tick(self, api: ApiClient) -> dict[str, Any] | None: ...


def sse(event: str, data: Any) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def stream_response(
    request: Request, user: User, feed: Feed, event: str, refresh_s: float, limit: int | None
) -> StreamingResponse:
    """Tick ``feed`` every ``refresh_s`` and send each change as ``event`` (``limit``: ticks, then end).

    A tick without change sends an SSE comment, so a dead connection is noticed by the server
    and the browser alike. The stream ends after an update whose ``ended`` is true.
    """

    async def stream() -> AsyncIterator[str]:
        async with ApiClient(request.app, user.token) as api:
            ticks = 0
            while limit is None or ticks < limit:
                try:
                    update = await feed.tick(api)
                except ApiError as exc:
                    # 401: the session is over (logout, expiry); anything else: what was watched is gone.
                    yield sse(
                        "gone" if exc.status == 401 else "failed",
                        {"status": exc.status, "detail": exc.detail},
                    )
                    return
                yield ": idle\n\n" if update is None else sse(event, update)
                ticks += 1
                if update is not None and update.get("ended"):
                    return
                if limit is None or ticks < limit:
                    await asyncio.sleep(refresh_s)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def add_live_pages(router: APIRouter, views: Jinja2Templates, refresh_s: float) -> None:
    """Register the Line and Rollout pages, their streams and the rollout forms on ``router``."""

    def error_page(request: Request, user: User, exc: ApiError) -> Response:
        return respond.error_page(views, request, user, exc)

    async def page(request: Request, name: str, build: Build) -> Response:
        return await respond.render_page(views, request, name, build)

    async def streaming_user(request: Request) -> User:
        user = await current_user(request)
        if user is None:
            raise HTTPException(401, "log in to the console first")
        return user

    @router.get("/lines/{line}")
    async def line(request: Request, line: str, range: str = "1h") -> Response:  # noqa: A002
        return await page(request, "line.html", lambda api, _u: line_context(api, line, range))

    @router.get("/console/lines/{line}/events")
    async def line_events(
        request: Request, line: str, range: str = "1h", limit: int | None = None
    ) -> Response:  # noqa: A002
        """Server-sent ``line`` events: changed chart, totals and breakdown, and new gallery entries."""
        user = await streaming_user(request)
        feed = LineFeed(line, range, views.get_template("line_parts.html"))
        return stream_response(request, user, feed, "line", refresh_s, limit)

    async def rollouts_context(api: ApiClient, values: dict[str, str] | None = None) -> dict[str, Any]:
        context = {
            "rollouts": await api.get("/rollouts"),
            "values": {**rollout_form.defaults(), **(values or {})},
            "errors": {},
            "general_errors": [],
        }
        return context | await rollout_form.form_context(api)

    @router.get("/console/gateways/events")
    async def gateways_events(request: Request, limit: int | None = None) -> Response:
        """Server-sent ``gateways`` events: the rows that changed (the table when the fleet did)."""
        user = await streaming_user(request)
        feed = GatewaysFeed(views.get_template("gateways_parts.html"))
        return stream_response(request, user, feed, "gateways", refresh_s, limit)

    @router.get("/console/gateways/{gateway_id}/events")
    async def gateway_events(request: Request, gateway_id: str, limit: int | None = None) -> Response:
        """Server-sent ``gateway`` events: state, telemetry, OTA, events and results that changed."""
        user = await streaming_user(request)
        feed = GatewayFeed(gateway_id, views.get_template("gateway_parts.html"))
        return stream_response(request, user, feed, "gateway", refresh_s, limit)

    @router.get("/rollouts")
    async def rollouts(request: Request) -> Response:
        async def build(api: ApiClient, user: User) -> dict[str, Any]:
            if not user.is_admin:  # the form (and the registry reads behind it) is for admins only
                return {"rollouts": await api.get("/rollouts")}
            return await rollouts_context(api)

        return await page(request, "rollouts.html", build)

    @router.get("/console/rollouts/events")
    async def rollouts_events(request: Request, limit: int | None = None) -> Response:
        """Server-sent ``rollouts`` events: the list's table (state and progress) whenever it changed."""
        user = await streaming_user(request)
        feed = rollout_view.RolloutsFeed(views.get_template("rollouts_parts.html"))
        return stream_response(request, user, feed, "rollouts", refresh_s, limit)

    @router.post("/rollouts")
    async def rollout_create(request: Request) -> Response:
        check_origin(request)
        user = await current_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        fields = await form(request)
        async with ApiClient(request.app, user.token) as api:
            try:
                created = await api.post("/rollouts", rollout_form.request_body(fields))
            except ApiError as exc:
                errors, general = rollout_form.field_errors(exc)
                return await respond.refused_form(
                    views, request, user, exc, "rollouts.html", lambda: rollouts_context(api, fields),
                    {"errors": errors, "general_errors": general},
                )  # fmt: skip
        return RedirectResponse(f"/rollouts/{quote(created['id'], safe='')}", status_code=303)

    @router.get("/rollouts/{rollout_id}")
    async def rollout(request: Request, rollout_id: str) -> Response:
        async def build(api: ApiClient, _u: User) -> dict[str, Any]:
            ctx = await rollout_view.load(api, rollout_id)
            return {**ctx, "ctx": ctx}

        return await page(request, "rollout.html", build)

    @router.get("/console/rollouts/{rollout_id}/events")
    async def rollout_events(request: Request, rollout_id: str, limit: int | None = None) -> Response:
        """Server-sent ``rollout`` events: state and the changed waves, gates, gateways and log."""
        user = await streaming_user(request)
        feed = rollout_view.RolloutFeed(rollout_id, views.get_template("rollout_parts.html"))
        return stream_response(request, user, feed, "rollout", refresh_s, limit)

    @router.post("/rollouts/{rollout_id}/{action}")
    async def rollout_action(request: Request, rollout_id: str, action: str) -> Response:
        check_origin(request)
        user = await current_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        reason = (await form(request)).get("reason", "")
        async with ApiClient(request.app, user.token) as api:
            try:
                await api.post(
                    f"/rollouts/{quote(rollout_id, safe='')}/{quote(action, safe='')}", {"reason": reason}
                )
            except ApiError as exc:
                return error_page(request, user, exc)
        return RedirectResponse(f"/rollouts/{quote(rollout_id, safe='')}", status_code=303)
