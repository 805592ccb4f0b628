"""Serves a simulated camera line live over HTTP, the way cheap IP cameras do.

``GET /stream.mjpg`` is a ``multipart/x-mixed-replace`` MJPEG stream (what
``cv2.VideoCapture("http://host:port/stream.mjpg")`` reads), ``GET /frame.jpg`` the latest frame
and ``GET /truth`` the ground truth of the latest frames as JSON.

One producer thread renders frames at the configured rate; every client gets the newest frame
(a slow client skips frames, it never makes the line slow down, like a real camera).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

BOUNDARY = "frame"


class Truth(Protocol):
    """A frame's ground truth, reported by ``/truth``."""

    def to_dict(self) -> dict[str, object]: ...


class RenderedFrame(Protocol):
    """What a line renders: any simulator (camera line, parcel line) that fits is served."""

    @property
    def index(self) -> int: ...

    @property
    def image(self) -> npt.NDArray[np.uint8]: ...

    @property
    def truth(self) -> Truth: ...


class LineConfig(Protocol):
    @property
    def seed(self) -> int: ...


class Line(Protocol):
    """A deterministic line: frame ``index`` is a pure function of the config."""

    @property
    def config(self) -> LineConfig: ...

    def frame(self, index: int) -> RenderedFrame: ...


@dataclass(frozen=True)
class MjpegConfig:
    """Where and how fast the simulated camera serves."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: the OS picks a free port; read MjpegServer.port after start()
    fps: float = 10.0
    jpeg_quality: int = 85
    truth_history: int = 50  # how many recent frames /truth reports
    client_timeout_s: float = 5.0  # a client that stops reading is dropped after this

    def __post_init__(self) -> None:
        if not 0.1 <= self.fps <= 120:
            raise ValueError(f"MjpegConfig.fps must be in [0.1, 120], got {self.fps}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"MjpegConfig.jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"MjpegConfig.port must be in [0, 65535], got {self.port}")
        if self.truth_history < 1:
            raise ValueError(f"MjpegConfig.truth_history must be >= 1, got {self.truth_history}")


@dataclass(frozen=True)
class _Latest:
    index: int
    jpeg: bytes
    truth: Truth


class _HttpServer(ThreadingHTTPServer):
    # Handler threads are joined on close (no daemon threads left behind after stop()).
    daemon_threads = False
    block_on_close = True
    camera: MjpegServer


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = "HTTP/1.0"

    def setup(self) -> None:
        super().setup()
        # A client that stops reading must not pin a handler thread (and so stop()) forever.
        self.connection.settimeout(self.server.camera.config.client_timeout_s)

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
            else:
                self.send_error(404, f"unknown path {path}; try /stream.mjpg, /frame.jpg or /truth")
        except (BrokenPipeError, ConnectionResetError, TimeoutError) as exc:
            log.debug("client %s went away: %s", self.address_string(), exc)

    def _send(self, status: int, ctype: str, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, camera: MjpegServer) -> None:
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


class MjpegServer:
    """A camera line served over HTTP from background threads; ``start()`` / ``stop()`` or ``with``."""

    def __init__(self, line: Line, config: MjpegConfig, start_index: int = 0) -> None:
        self.line = line
        self.config = config
        self._next_index = start_index
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._latest: _Latest | None = None
        self._truths: deque[Truth] = deque(maxlen=config.truth_history)
        self._httpd: _HttpServer | None = None
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        """The bound TCP port (the real one when the config asked for port 0)."""
        if self._httpd is None:
            raise RuntimeError("MjpegServer.port: the server is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8080``; the stream is at ``url + "/stream.mjpg"``."""
        return f"http://{self.config.host}:{self.port}"

    @property
    def stopping(self) -> bool:
        """True once stop() has been called; streaming handlers end on it."""
        return self._stop.is_set()

    def start(self) -> None:
        """Bind the port, render the first frame and start serving."""
        if self._httpd is not None:
            raise RuntimeError("MjpegServer.start: already started")
        httpd = _HttpServer((self.config.host, self.config.port), _Handler)
        httpd.camera = self
        self._httpd = httpd
        self._render_next()  # clients never see an empty camera
        self._threads = [
            threading.Thread(target=self._produce, name="mjpeg-producer"),
            threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="mjpeg-http"),
        ]
        for thread in self._threads:
            thread.start()
        log.info(
            "camera line (seed %d) serving at %s/stream.mjpg, %.1f fps",
            self.line.config.seed,
            self.url,
            self.config.fps,
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop rendering, end open streams, close the socket and join every thread."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        httpd = self._httpd
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()  # joins the handler threads (block_on_close)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
            if thread.is_alive():
                log.error("MjpegServer.stop: thread %s did not stop within %.1f s", thread.name, timeout)
        self._threads = []
        self._httpd = None

    def __enter__(self) -> MjpegServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_frame(self, after: int, timeout: float) -> _Latest | None:
        """The latest frame once its index is greater than ``after``; None on timeout or stop."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._stop.is_set() or (self._latest is not None and self._latest.index > after),
                timeout,
            )
            latest = self._latest
        if latest is None or latest.index <= after:
            return None
        return latest

    def truth_snapshot(self) -> dict[str, object]:
        """``{"fps", "latest_index", "frames": [truth, ...]}``, oldest frame first."""
        with self._cond:
            frames = [t.to_dict() for t in self._truths]
            latest = None if self._latest is None else self._latest.index
        return {"fps": self.config.fps, "latest_index": latest, "frames": frames}

    def _render_next(self) -> None:
        frame = self.line.frame(self._next_index)
        ok, buf = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for frame {frame.index}")
        with self._cond:
            self._latest = _Latest(index=frame.index, jpeg=buf.tobytes(), truth=frame.truth)
            self._truths.append(frame.truth)
            self._cond.notify_all()
        self._next_index += 1

    def _produce(self) -> None:
        period = 1.0 / self.config.fps
        next_tick = time.monotonic() + period
        while not self._stop.wait(max(next_tick - time.monotonic(), 0.0)):
            try:
                self._render_next()
            except Exception:
                log.exception(
                    "camera line: rendering frame %d failed; stopping the producer", self._next_index
                )
                return
            # Like a real camera, a slow render skips ticks rather than bursting to catch up.
            next_tick = max(next_tick + period, time.monotonic())
