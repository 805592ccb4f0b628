"""Replay images from a folder, sorted by name, none skipped."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np

from edge_agent.config_sources import FolderSourceConfig
from edge_agent.frames import DropPolicy, Frame
from edge_agent.sources.base import Source
from protocol.messages import utcnow

log = logging.getLogger(__name__)


class FolderSource(Source[FolderSourceConfig]):
    """Images in a directory in name order; BLOCK policy so every file reaches the models."""

    policy = DropPolicy.BLOCK
    config_type = FolderSourceConfig

    def _files(self) -> list[Path]:
        return sorted(p for p in self.config.path.glob(self.config.pattern) if p.is_file())

    def run(self) -> None:
        """Emit each image once (or forever with ``loop``), at most ``rate_fps`` per second."""
        cfg = self.config
        interval = 1.0 / cfg.rate_fps if cfg.rate_fps > 0 else 0.0
        next_at = time.monotonic()
        while not self._stop.is_set():
            files = self._files()
            if not files:
                log.warning("source %s: no files match %s in %s", self.name, cfg.pattern, cfg.path)
            for path in files:
                if interval:
                    wait = next_at - time.monotonic()
                    if wait > 0 and self._stop.wait(wait):
                        return
                    next_at = max(next_at + interval, time.monotonic())
                if self._stop.is_set():
                    return
                raw = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if raw is None:
                    log.warning("source %s: cannot decode %s as an image, skipped", self.name, path)
                    continue
                self.emit(Frame(self.name, path.name, utcnow(), np.asarray(raw, dtype=np.uint8)))
            if not cfg.loop:
                log.info("source %s: replayed %d file(s) from %s", self.name, len(files), cfg.path)
                return
            if not files:
                self._stop.wait(1.0)
