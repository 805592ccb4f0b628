"""JSON over local HTTP, both ways: calling a simulator's endpoint, and answering as one."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler
from typing import Any

TIMEOUT_S = 5.0


def call_json(method: str, url: str, body: object = None, timeout_s: float = TIMEOUT_S) -> tuple[int, Any]:
    """Send ``body`` (JSON, when not None) and return (status, decoded JSON answer).

    An HTTP error status is returned, not raised, with its JSON body (``{"detail": ...}``), or
    ``{"detail": <its text>}``; OSError when nothing answers, ValueError when the answer is not JSON.
    """
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - local
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - local
            return int(response.status), json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            text = exc.read().decode("utf-8", errors="replace")
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, {"detail": text.strip() or exc.reason}


def send_json(handler: BaseHTTPRequestHandler, status: int, answer: object) -> None:
    """Answer ``handler``'s request with ``status`` and ``answer`` as JSON."""
    body = json.dumps(answer).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Cache-Control", "no-store")
    handler.end_headers()
    handler.wfile.write(body)


def read_json(handler: BaseHTTPRequestHandler, limit: int) -> object:
    """The request's JSON body (None when empty); ValueError naming the problem."""
    length = handler.headers.get("Content-Length", "0")
    if not length.isdigit() or int(length) > limit:
        raise ValueError(f"Content-Length {length!r} is not within 0..{limit}")
    raw = handler.rfile.read(int(length))
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise ValueError(f"the body is not JSON: {raw[:80]!r}") from None
