"""A monotonic clock that moves only when the test moves it (rate-limit windows without sleeping)."""

from __future__ import annotations


class ManualClock:
    """Seconds, as ``time.monotonic`` gives them; ``advance`` moves them on."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
