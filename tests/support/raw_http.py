"""An ASGI app served by uvicorn on a real port, what the app read of each request body, and a
raw-socket client that sends a head and then body bytes for as long as the server takes them.

For what an in-process client cannot show: it holds the whole body before the app sees it.
"""

from __future__ import annotations

import socket
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from tests.support.waiting import wait_for

Scope = dict[str, Any]
Message = dict[str, Any]


class BodyCounter:
    """ASGI middleware counting, per path, the request body bytes the app pulled from the server."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.read: defaultdict[str, int] = defaultdict(int)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def counted() -> Message:
            message: Message = await receive()
            if message["type"] == "http.request":
                self.read[path] += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


@contextmanager
def serving(app: Any) -> Iterator[int]:
    """Serve ``app`` on 127.0.0.1 (a free port, yielded) until the context ends."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 20, "uvicorn to start")
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class RawAnswer:
    status: int
    head: str
    body_sent: int  # body bytes the kernel accepted before the answer came


def send_raw(port: int, head: str, body: bytes = b"", repeat: int = 0, timeout_s: float = 30) -> RawAnswer:
    """Send ``head`` (request line and headers), then ``body`` ``repeat`` times from a thread while
    reading the answer; the answer ends the sending. ``timeout_s`` only guards against a hang."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    sent = 0

    def send_body() -> None:
        nonlocal sent
        try:
            for _ in range(repeat):
                sock.sendall(body)
                sent += len(body)
        except OSError:
            pass  # the server answered and closed: what we wanted to see

    sock.sendall(head.encode())
    sender = threading.Thread(target=send_body, name="raw-sender", daemon=True)
    sender.start()
    answer = b""
    try:
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    finally:
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        sender.join(10)
    head_text = answer.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
    return RawAnswer(int(head_text.split(" ", 2)[1]), head_text, sent)


def chunk(data: bytes) -> bytes:
    """``data`` as one piece of a chunked transfer encoding."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"
