"""The Overview: a tile per line, and its stream of fresh summaries (what: :mod:`cloud.console.summary`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response

from cloud.console import deps
from cloud.console.api import ApiClient, ApiError
from cloud.console.deps import CurrentUser
from cloud.console.respond import render_page
from cloud.console.stream import event_stream, sse
from cloud.console.summary import overview

router = APIRouter()


@router.get("/")
async def home(request: Request) -> Response:
    return await render_page(request, "overview.html", lambda api, _u: overview(api))


@router.get("/console/events")
async def events(request: Request, user: CurrentUser, limit: int | None = None) -> Response:
    """Server-sent events: a fresh Overview summary every ``REFRESH_S`` (``limit`` ends the stream)."""

    async def stream() -> AsyncIterator[str]:
        sent = 0
        async with ApiClient(request.app, user.token) as api:
            while limit is None or sent < limit:
                try:
                    data = await overview(api)
                except ApiError as exc:  # e.g. the token was revoked meanwhile
                    yield sse("gone", exc.detail)
                    return
                yield sse("summary", data)
                sent += 1
                if limit is None or sent < limit:
                    await asyncio.sleep(deps.REFRESH_S)

    return event_stream(stream())
