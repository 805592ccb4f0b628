"""The HTTP side of the simulated camera: the MJPEG stream, the latest frame, the truth and the look.

:class:`CameraHandler` answers for any :class:`ServedCamera` (``simulators.mjpeg.MjpegServer``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from simulators.json_http import read_json, send_json
from simulators.served_line import Truth

log = logging.getLogger(__name__)

BOUNDARY = "frame"
MAX_LOOK_BODY = 1024  # a POST /look body is {"look": NAME}; anything longer is refused unread


@dataclass(frozen=True)
class ServedFrame:
    """The latest frame as served: its index, JPEG bytes and truth."""

    index: int
    jpeg: bytes
    truth: Truth


class ServedCamera(Protocol):
    """What the handler serves: frames as they are rendered, their truth, and the line's look."""

    @property
    def stopping(self) -> bool: ...

    @property
    def client_timeout_s(self) -> float: ...

    def wait_for_frame(self, after: int, timeout: float) -> ServedFrame | None: ...

    def truth_snapshot(self) -> dict[str, object]: ...

    def look_state(self) -> tuple[int, dict[str, object]]: ...

    def look_request(self, asked: object) -> tuple[int, dict[str, object]]: ...


class CameraHttpServer(ThreadingHTTPServer):
    # Handler threads are joined on close (no daemon threads left behind after stop()).
    daemon_threads = False
    block_on_close = True
    camera: ServedCamera


class CameraHandler(BaseHTTPRequestHandler):
    server: CameraHttpServer
    protocol_version = "HTTP/1.0"

    def setup(self) -> None:
        super().setup()
        # A client that stops reading must not pin a handler thread (and so stop()) forever.
        self.connection.settimeout(self.server.camera.client_timeout_s)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        camera = self.server.camera
        path = self.path.split("?", 1)[0]
        try:
            if path == "/stream.mjpg":
                self._stream(camera)
            elif path == "/frame.jpg":
                latest = camera.wait_for_frame(after=-1, timeout=2.0)
                if latest is None:
                    self.send_error(503, "no frame rendered yet")
                    return
                self._send(200, "image/jpeg", latest.jpeg, {"X-Frame-Index": str(latest.index)})
            elif path == "/truth":
                body = json.dumps(camera.truth_snapshot()).encode()
                self._send(200, "application/json", body, {})
            elif path == "/look":
                send_json(self, *camera.look_state())
            else:
                self.send_error(404, f"unknown path {path}; try /stream.mjpg, /frame.jpg, /truth or /look")
        except (BrokenPipeError, ConnectionResetError, TimeoutError) as exc:
            log.debug("client %s went away: %s", self.address_string(), exc)

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path != "/look":
            send_json(self, 404, {"detail": f'unknown path {path}; POST /look with {{"look": NAME}}'})
            return
        try:
            asked = read_json(self, MAX_LOOK_BODY)
        except ValueError as exc:
            send_json(self, 400, {"detail": f"POST /look: {exc}"})
            return
        send_json(self, *self.server.camera.look_request(asked))

    def _send(self, status: int, ctype: str, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, camera: ServedCamera) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        last = -1
        while not camera.stopping:
            latest = camera.wait_for_frame(after=last, timeout=0.5)
            if latest is None:
                continue
            last = latest.index
            head = (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(latest.jpeg)}\r\n"
                f"X-Frame-Index: {latest.index}\r\n\r\n"
            ).encode()
            self.wfile.write(head + latest.jpeg + b"\r\n")
            self.wfile.flush()
