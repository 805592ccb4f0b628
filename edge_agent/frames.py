"""Frames and the bounded queues between sources and model workers."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured input: who captured it, its reference, when (aware UTC), and the BGR pixels,
    or the text for text sources (then ``image`` is an empty array)."""

    source: str
    ref: str
    captured_at: datetime
    image: Image
    text: str | None = None


class DropPolicy(StrEnum):
    """What a full queue does with a new frame."""

    DROP_OLDEST = "drop_oldest"  # live cameras: a fresh frame beats a stale one
    BLOCK = "block"  # replays: the producer waits, nothing is skipped


class FrameQueue:
    """A bounded FIFO with a per-put drop policy; ``put`` and ``get`` wake up when ``stop`` is set."""

    def __init__(self, maxsize: int, stop: threading.Event) -> None:
        if maxsize < 1:
            raise ValueError(f"queue size must be >= 1, got {maxsize}")
        self._items: deque[Frame] = deque()
        self._maxsize = maxsize
        self._stop = stop
        self._cond = threading.Condition()
        # Frames handed out by get_batch and not yet marked done: a queue that is empty while its
        # consumer still works on the last batch is not idle (results not yet in the outbox).
        self._unfinished = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing handed out still being worked on."""
        with self._cond:
            return not self._items and self._unfinished == 0

    def done(self, count: int) -> None:
        """The consumer finished ``count`` frames of a batch (stored, dropped or failed)."""
        with self._cond:
            self._unfinished = max(0, self._unfinished - count)

    def put(self, frame: Frame, policy: DropPolicy) -> int:
        """Enqueue ``frame``; return how many frames were dropped (0 or 1; 1 also when stopped)."""
        with self._cond:
            dropped = 0
            if policy is DropPolicy.DROP_OLDEST:
                if len(self._items) >= self._maxsize:
                    self._items.popleft()
                    dropped = 1
            else:
                while len(self._items) >= self._maxsize:
                    if self._stop.is_set():
                        return 1
                    self._cond.wait(timeout=0.1)
            self._items.append(frame)
            self._cond.notify_all()
            return dropped

    def get_batch(self, max_items: int, max_wait_s: float, poll_s: float = 0.1) -> list[Frame]:
        """Wait up to ``poll_s`` for a first frame, then up to ``max_wait_s`` to collect ``max_items``.

        Returns an empty list when nothing arrived (the caller checks its stop event then).
        """
        with self._cond:
            if not self._items:
                self._cond.wait(timeout=poll_s)
                if not self._items:
                    return []
            deadline = time.monotonic() + max_wait_s
            while len(self._items) < max_items and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(timeout=left)
            batch = [self._items.popleft() for _ in range(min(max_items, len(self._items)))]
            self._unfinished += len(batch)
            self._cond.notify_all()
            return batch

    def wake(self) -> None:
        """Wake every waiter (used after the stop event is set)."""
        with self._cond:
            self._cond.notify_all()
