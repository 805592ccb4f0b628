"""A camera via OpenCV: device index, video file or stream URL; reopens with backoff when it drops."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import cv2

from edge_agent.config_sources import CameraSourceConfig
from edge_agent.frames import DropPolicy, Frame
from edge_agent.sources.base import FrameSink, Source
from protocol.messages import utcnow

log = logging.getLogger(__name__)


class CameraSource(Source[CameraSourceConfig]):
    """Live frames, at most ``fps_limit`` per second; DROP_OLDEST so models see the freshest frame."""

    policy = DropPolicy.DROP_OLDEST
    config_type = CameraSourceConfig

    def __init__(self, config: CameraSourceConfig, sink: FrameSink, stop: threading.Event) -> None:
        super().__init__(config, sink, stop)
        self._counter = 0
        self.opens = 0

    @property
    def target(self) -> str | int:
        """What OpenCV opens: the device index, the URL or the file path."""
        cfg = self.config
        if cfg.device is not None:
            return cfg.device
        if cfg.url is not None:
            return cfg.url
        return str(cfg.path)

    def _open(self) -> Any:
        cap = cv2.VideoCapture(self.target)
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    def run(self) -> None:
        """Open, read until the stream fails, back off, reopen; until stopped."""
        cfg = self.config
        delay = cfg.reopen_min_s
        while not self._stop.is_set():
            cap = self._open()
            if cap is None:
                log.warning("camera %s: cannot open %s, retrying in %.1f s", self.name, self.target, delay)
            else:
                self.opens += 1
                log.info("camera %s: opened %s", self.name, self.target)
                try:
                    if self._read_until_failure(cap):
                        delay = cfg.reopen_min_s  # it worked for a while: start the backoff afresh
                finally:
                    cap.release()
                if self._stop.is_set():
                    return
                log.warning(
                    "camera %s: stream %s ended or dropped, reopening in %.1f s",
                    self.name,
                    self.target,
                    delay,
                )
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, cfg.reopen_max_s)

    def _read_until_failure(self, cap: Any) -> bool:
        """Read frames until a read fails or stop; return whether any frame was read."""
        interval = 1.0 / self.config.fps_limit
        # A file is read at its pace-limited rate; a live stream is read continuously (so its
        # buffer never goes stale) and only every ``interval`` a frame is passed on.
        is_file = self.config.path is not None
        next_at = time.monotonic()
        got_any = False
        while not self._stop.is_set():
            if is_file:
                wait = next_at - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return got_any
            ok, image = cap.read()
            if not ok or image is None:
                return got_any
            got_any = True
            now = time.monotonic()
            if now < next_at:
                continue
            next_at = max(next_at + interval, now)
            if image.ndim == 2:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            self._counter += 1
            self.emit(Frame(self.name, f"{self.name}#{self._counter}", utcnow(), image))
        return got_any
