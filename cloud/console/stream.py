"""A live page's stream: a feed ticked every ``REFRESH_S``, each change sent as a server-sent event.

Every stream reads through the API with the logged-in user's token, one batch of calls per tick,
and sends only the page fragments that changed. When the token stops working (logout, expiry,
revocation) the stream says ``gone`` and ends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

from fastapi import Request
from fastapi.responses import StreamingResponse

from cloud.console import deps
from cloud.console.api import ApiClient, ApiError
from cloud.console.session import User


class Feed(Protocol):
    """One page's live updates: ``tick`` returns what changed (None: nothing did)."""

    async def tick(self, api: ApiClient) -> dict[str, Any] | None: ...


def sse(event: str, data: Any) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def event_stream(body: AsyncIterator[str]) -> StreamingResponse:
    """``body``'s events as an uncached ``text/event-stream``."""
    return StreamingResponse(body, media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def stream_response(
    request: Request, user: User, feed: Feed, event: str, limit: int | None
) -> StreamingResponse:
    """Tick ``feed`` every ``REFRESH_S`` and send each change as ``event`` (``limit``: ticks, then end).

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
                    await asyncio.sleep(deps.REFRESH_S)

    return event_stream(stream())
