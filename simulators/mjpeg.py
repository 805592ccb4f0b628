"""Serves a simulated camera line live over HTTP, the way cheap IP cameras do.

``GET /stream.mjpg`` is a ``multipart/x-mixed-replace`` MJPEG stream (what
``cv2.VideoCapture("http://host:port/stream.mjpg")`` reads), ``GET /frame.jpg`` the latest frame
and ``GET /truth`` the ground truth of the latest frames as JSON. A line with looks
(``simulators.looks``) also answers ``GET /look`` (the current look, the others, and the first
frame in it) and ``POST /look`` with ``{"look": NAME}``, which switches it from the next frame on.

One producer thread renders frames at the configured rate; every client gets the newest frame
(a slow client skips frames, it never makes the line slow down, like a real camera).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import cv2

from simulators.mjpeg_http import CameraHandler, CameraHttpServer, ServedFrame
from simulators.served_line import Line, LookSwitch, Truth

log = logging.getLogger(__name__)


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


class MjpegServer:
    """A camera line served over HTTP from background threads; ``start()`` / ``stop()`` or ``with``."""

    def __init__(self, line: Line, config: MjpegConfig, start_index: int = 0) -> None:
        self.line = line
        self.config = config
        self._next_index = start_index
        self._look_from = start_index  # the first frame rendered in the current look
        # Held while a frame renders: a look switch waits for it, so it knows its first frame.
        self._render_lock = threading.Lock()
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._latest: ServedFrame | None = None
        self._truths: deque[Truth] = deque(maxlen=config.truth_history)
        self._httpd: CameraHttpServer | None = None
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
    def client_timeout_s(self) -> float:
        """How long a client may stop reading before it is dropped."""
        return self.config.client_timeout_s

    @property
    def stopping(self) -> bool:
        """True once stop() has been called; streaming handlers end on it."""
        return self._stop.is_set()

    def start(self) -> None:
        """Bind the port, render the first frame and start serving."""
        if self._httpd is not None:
            raise RuntimeError("MjpegServer.start: already started")
        httpd = CameraHttpServer((self.config.host, self.config.port), CameraHandler)
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

    def wait_for_frame(self, after: int, timeout: float) -> ServedFrame | None:
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
        """``{"fps", "latest_index", "frames": [truth, ...]}``, oldest frame first; a line with
        looks adds ``"look"``, the current one (each frame's truth names its own)."""
        with self._cond:
            frames = [t.to_dict() for t in self._truths]
            latest = None if self._latest is None else self._latest.index
        snapshot: dict[str, object] = {"fps": self.config.fps, "latest_index": latest, "frames": frames}
        if isinstance(self.line, LookSwitch):
            snapshot["look"] = self.line.look
        return snapshot

    def look_state(self) -> tuple[int, dict[str, object]]:
        """The answer to ``GET /look``: status and ``{"look", "looks", "from_index"}``."""
        line = self.line
        if not isinstance(line, LookSwitch):
            return 404, {"detail": "this line has a single look"}
        with self._render_lock:
            return 200, {"look": line.look, "looks": list(line.looks), "from_index": self._look_from}

    def set_look(self, look: str) -> dict[str, object]:
        """Render in ``look`` from the next frame on; ``{"look", "previous", "from_index"}``.

        TypeError when the line has a single look, ValueError (naming the looks) for an unknown one.
        """
        line = self.line
        if not isinstance(line, LookSwitch):
            raise TypeError("this line has a single look")
        with self._render_lock:
            previous = line.set_look(look)
            if look != previous:
                self._look_from = self._next_index
            first = self._look_from
        log.info("look %s -> %s from frame %d", previous, look, first)
        return {"look": look, "previous": previous, "from_index": first}

    def look_request(self, asked: object) -> tuple[int, dict[str, object]]:
        """The answer to ``POST /look`` whose JSON body is ``asked``: status and JSON."""
        look = asked.get("look") if isinstance(asked, dict) else None
        if not isinstance(look, str):
            return 400, {"detail": f'POST /look: the body must be {{"look": NAME}}, not {asked!r:.80}'}
        try:
            return 200, self.set_look(look)
        except TypeError as exc:
            return 404, {"detail": str(exc)}
        except ValueError as exc:
            return 400, {"detail": str(exc)}

    def _render_next(self) -> None:
        with self._render_lock:
            frame = self.line.frame(self._next_index)
            quality = [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality]
            ok, buf = cv2.imencode(".jpg", frame.image, quality)
            if not ok:
                raise RuntimeError(f"JPEG encoding failed for frame {frame.index}")
            with self._cond:
                self._latest = ServedFrame(index=frame.index, jpeg=buf.tobytes(), truth=frame.truth)
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
