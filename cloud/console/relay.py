"""An API download streamed through the console as the logged-in user.

:class:`cloud.console.api.ApiClient` (httpx's in-process transport) holds a whole answer before it
returns it, which is right for pages but not for a CSV export of a month. Here the API app is
called directly as ASGI and its body is passed on message by message, through a small queue: the
API writes its next batch only when the browser has taken the last ones, so memory holds a few
batches whatever the export's size. Roles are still the API's to check (the user's token goes
with the call).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, MutableMapping
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from cloud.console.api import ApiError

Message = MutableMapping[str, Any]
QUEUED_MESSAGES = 4  # batches the API may run ahead of the browser
PASSED_HEADERS = (b"content-type", b"content-disposition")


async def stream_get(app: FastAPI, token: str, path: str, params: dict[str, str]) -> StreamingResponse:
    """GET ``/api/v1{path}`` as the holder of ``token``, passed on as it streams.

    An API refusal (4xx/5xx) raises :class:`ApiError` before anything is sent, like ApiClient's.
    """
    queue: asyncio.Queue[Message | None] = asyncio.Queue(maxsize=QUEUED_MESSAGES)
    gone = asyncio.Event()
    asked = False
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": f"/api/v1{path}", "raw_path": f"/api/v1{path}".encode(),
        "query_string": urlencode(params).encode(), "root_path": "",
        "headers": [(b"host", b"console.internal"), (b"authorization", f"Bearer {token}".encode())],
        "server": ("console.internal", 80), "client": ("127.0.0.1", 0),
    }  # fmt: skip

    async def receive() -> Message:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()  # the API's response waits here to learn that the browser left
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        await queue.put(message)

    async def run() -> None:
        try:
            await app(scope, receive, send)
        finally:
            if not gone.is_set():  # the reader still waits: tell it the answer ended
                await queue.put(None)

    task = asyncio.create_task(run())
    start = await queue.get()
    if start is None or start["type"] != "http.response.start":
        await _stop(task, gone)
        raise ApiError("GET", path, 500, "the API ended without an answer")
    status = int(start["status"])
    if status >= 400:
        body = b"".join([chunk async for chunk in _body(queue)])
        await _stop(task, gone)
        raise _refusal(path, status, body)
    headers = {k.decode(): v.decode() for k, v in start.get("headers", []) if k.lower() in PASSED_HEADERS}

    async def relayed() -> AsyncIterator[bytes]:
        try:
            async for chunk in _body(queue):
                yield chunk
        finally:
            await _stop(task, gone)

    return StreamingResponse(relayed(), status_code=status, headers=headers)


async def _body(queue: asyncio.Queue[Message | None]) -> AsyncIterator[bytes]:
    while (message := await queue.get()) is not None:
        if message.get("body"):
            yield bytes(message["body"])
        if not message.get("more_body", False):
            return


async def _stop(task: asyncio.Task[None], gone: asyncio.Event) -> None:
    gone.set()
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _refusal(path: str, status: int, body: bytes) -> ApiError:
    try:
        detail: Any = json.loads(body).get("detail", body.decode(errors="replace"))
    except (ValueError, AttributeError):
        detail = body.decode(errors="replace")
    return ApiError("GET", path, status, str(detail), detail)
