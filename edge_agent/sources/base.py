"""The frame-source plug-in base: a thread that reads frames and hands them to a sink."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, Generic, TypeVar

from edge_agent.config_sources import CameraSourceConfig, FolderSourceConfig, NotesSourceConfig
from edge_agent.frames import DropPolicy, Frame

log = logging.getLogger(__name__)

# The agent's dispatcher: puts the frame on every subscribed model queue with the given policy.
FrameSink = Callable[[Frame, DropPolicy], None]
SourceSection = CameraSourceConfig | FolderSourceConfig | NotesSourceConfig
ConfigT = TypeVar("ConfigT", bound=SourceSection, covariant=True)


class Source(ABC, Generic[ConfigT]):
    """A frame source running in its own thread until ``stop`` is set (or it runs out of frames),
    configured by its section of the gateway config."""

    policy: ClassVar[DropPolicy]
    config_type: ClassVar[type[SourceSection]]

    def __init__(self, config: ConfigT, sink: FrameSink, stop: threading.Event) -> None:
        self.config: ConfigT = config
        self.name = config.name
        self._sink = sink
        self._stop = stop
        self._thread: threading.Thread | None = None

    @abstractmethod
    def run(self) -> None:
        """Read frames and pass them to the sink until stopped or exhausted."""

    def emit(self, frame: Frame) -> None:
        """Hand one frame to the sink with this source's drop policy."""
        self._sink(frame, self.policy)

    def start(self) -> None:
        """Start the reader thread."""
        self._thread = threading.Thread(target=self._guarded_run, name=f"source-{self.name}", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end; return False if it is still alive after ``timeout``."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        """Whether the reader thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _guarded_run(self) -> None:
        try:
            self.run()
        except Exception:
            # A broken source must not take the agent down; the others keep running.
            log.exception("source %s failed and stopped", self.name)
