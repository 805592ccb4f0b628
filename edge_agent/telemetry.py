"""Periodic Telemetry messages (QoS 0: the next sample supersedes a lost one).

The loop is given what it reads (the metrics' totals, the outbox's size) and how it sends, as
callables, never the agent itself: the agent builds it, so it must not depend on the agent.
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import time
from collections.abc import Callable

from edge_agent.metrics import MetricsSnapshot
from protocol.messages import SlotDrift, Telemetry, encode, utcnow

log = logging.getLogger(__name__)


def rss_bytes() -> int:
    """Resident memory of this process (Linux /proc; elsewhere the peak RSS)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class TelemetryLoop:
    """A thread publishing a Telemetry sample every ``interval_s`` until ``stop`` is set.

    ``totals`` gives the metrics' counters, ``outbox_stats`` the outbox's (items, bytes) over both
    streams, ``publish(payload)`` sends one encoded sample at QoS 0, returning whether it went, and
    ``drift`` gives the drift verdict of each watched slot.
    """

    def __init__(
        self,
        gateway_id: str,
        totals: Callable[[], MetricsSnapshot],
        outbox_stats: Callable[[], tuple[int, int]],
        publish: Callable[[bytes], bool],
        interval_s: float,
        stop: threading.Event,
        drift: Callable[[], tuple[SlotDrift, ...]] = tuple,
    ) -> None:
        self._gateway_id = gateway_id
        self._drift = drift
        self._totals = totals
        self._outbox_stats = outbox_stats
        self._publish = publish
        self._interval_s = interval_s
        self._stop = stop
        self._started = time.monotonic()
        self._last_cpu = self._cpu_seconds()
        self._last_wall = self._started
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="telemetry", daemon=True)

    @staticmethod
    def _cpu_seconds() -> float:
        times = os.times()
        return times.user + times.system

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Join the thread (after the stop event)."""
        self._thread.join(timeout)

    def sample(self) -> Telemetry:
        """Build one sample now."""
        now, cpu = time.monotonic(), self._cpu_seconds()
        cpu_percent = max(0.0, 100.0 * (cpu - self._last_cpu) / max(now - self._last_wall, 1e-6))
        self._last_cpu, self._last_wall = cpu, now
        totals = self._totals()
        depth, size = self._outbox_stats()  # what the byte cap weighs: results and events
        return Telemetry(
            gateway_id=self._gateway_id,
            timestamp=utcnow(),
            uptime_s=now - self._started,
            cpu_percent=round(cpu_percent, 1),
            memory_bytes=rss_bytes(),
            frames_in=totals.frames_in,
            inferences=totals.inferences,
            frames_dropped=totals.frames_dropped,
            publish_errors=totals.publish_errors,
            outbox_depth=depth,
            outbox_bytes=size,
            drift=self._drift(),
        )

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                if self._publish(encode(self.sample())):
                    self.sent += 1
            except Exception:
                log.exception("telemetry sample failed")
