"""The three calls the uploader makes to the cloud API, with the gateway's own token.

``GET /api/v1/captures/files/{sha256}/status`` (bytes held: where to resume; all of them: never
send it again), ``PUT /api/v1/captures/files/{sha256}?size=&offset=`` (one chunk), and
``PUT /api/v1/captures/{id}/manifest`` (register the capture). A refusal that waiting cannot fix is
:class:`UploadRefused`; a cloud that is down, slow or overloaded is :class:`CloudUnavailable`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from http.client import HTTPException
from typing import Any

from edge_agent.config_base import ConfigError
from protocol.captures import CaptureManifest


class CloudUnavailable(Exception):
    """The cloud did not answer, or answered that it cannot now (5xx, 429): try again later."""


class UploadRefused(Exception):
    """The cloud refused a request (4xx); ``status`` and the API's ``detail`` say why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class CaptureApi:
    """HTTP calls to ``api_url`` with the gateway's token as the bearer.

    ``token`` is read again for every request (a file read), so a token replaced in its file
    (rotated before it expires, or after it was revoked) is used without restarting the agent.
    """

    def __init__(self, api_url: str, token: Callable[[], str], timeout_s: float) -> None:
        self._base = api_url.rstrip("/") + "/api/v1/captures"
        self._token = token
        self._timeout = timeout_s

    def _call(self, method: str, path: str, body: bytes | None = None, content_type: str = "") -> Any:
        try:
            headers = {"Authorization": f"Bearer {self._token()}"}
        except ConfigError as exc:
            raise UploadRefused(401, f"no usable token: {exc}") from None
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self._base + path, data=body, method=method, headers=headers)  # noqa: S310 - http(s) checked by the config
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = _detail(exc)
            if exc.code >= 500 or exc.code == 429:
                raise CloudUnavailable(f"{method} {path}: HTTP {exc.code}: {detail}") from None
            raise UploadRefused(exc.code, detail) from None
        except (OSError, HTTPException, ValueError) as exc:  # refused, reset, timed out, cut body
            raise CloudUnavailable(f"{method} {path}: {exc}") from None

    def held(self, sha256: str) -> int:
        """Bytes of the file the cloud holds (its size once complete; 0 if it has none)."""
        try:
            status = self._call("GET", f"/files/{sha256}/status")
        except UploadRefused as exc:
            if exc.status == 404:
                return 0
            raise
        return int(status["received_bytes"])

    def put_chunk(self, sha256: str, size: int, offset: int, data: bytes) -> int:
        """Send ``data`` at ``offset``; the bytes the cloud holds after it."""
        status = self._call(
            "PUT", f"/files/{sha256}?size={size}&offset={offset}", data, "application/octet-stream"
        )
        return int(status["received_bytes"])

    def register(self, manifest: CaptureManifest) -> None:
        """Register a capture whose files the cloud holds (the same one again is a no-op)."""
        self._call(
            "PUT", f"/{manifest.capture_id}/manifest", manifest.model_dump_json().encode(), "application/json"
        )


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return str(exc.reason)
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail) if detail is not None else str(exc.reason)
