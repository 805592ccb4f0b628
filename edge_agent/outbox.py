"""The durable outbox: SQLite in WAL mode, written before publish, cleared by the cloud's ack.

A broker's PUBACK is not durability (a SIGKILLed Mosquitto loses what it acknowledged), so an
item leaves the outbox only when the cloud's cumulative ``Ack`` for its ``stream`` covers its
``seq``. The outbox holds two streams in one database: results and gateway events (alarms), each
with its own stream id and seqs 1, 2, 3, ... never reused (the next value is persisted in the same
transaction as the items that took it). One byte cap covers both; past it results are shed
before events (alarms > results; telemetry never enters the outbox).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from edge_agent.outbox_streams import (
    EventDraft,
    OutboxEntry,
    OutboxStream,
    ResultDraft,
    ShedReport,
    transaction,
)
from protocol.messages import encode

__all__ = ["EventDraft", "Outbox", "OutboxEntry", "OutboxStream", "ResultDraft", "ShedReport"]

log = logging.getLogger(__name__)

_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


class Outbox:
    """Thread-safe (one connection behind a lock) durable queue of result and event items.

    ``results`` and ``events`` are the two streams; the methods without a stream in their name
    (``append``, ``read_after``, ...) act on results, the stream nearly every caller feeds.
    """

    def __init__(
        self, path: Path, max_bytes: int, on_shed: Callable[[ShedReport], None] | None = None
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self._on_shed = on_shed
        self._lock = threading.Lock()
        self.changed = threading.Condition()  # notified on append and ack; the publisher waits on it
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL, not NORMAL: in WAL mode NORMAL survives a process crash but a power cut can roll
        # back the last commits. Rolled-back items would be results lost, and a rolled-back
        # next_seq would hand an already published seq to a different item. One fsync per
        # micro-batch commit is cheap next to inference.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_META)
        with transaction(self._db):
            self.results = OutboxStream(
                self._db, self._lock, "results", "result_items", "result_", self._notify
            )
            self.events = OutboxStream(self._db, self._lock, "events", "event_items", "event_", self._notify)
        # Priority order: the publisher sends events first, the byte cap sheds results first.
        self.streams: tuple[OutboxStream, OutboxStream] = (self.events, self.results)
        for s in self.streams:
            log.info(
                "outbox %s: %s stream %s, %d item(s) pending, next seq %d",
                path,
                s.kind,
                s.stream,
                s.depth,
                s.next_seq,
            )

    @property
    def stream(self) -> str:
        """The results stream id."""
        return self.results.stream

    @property
    def acked_seq(self) -> int:
        """Highest results seq the cloud has acknowledged (cumulative)."""
        return self.results.acked_seq

    @property
    def last_seq(self) -> int:
        """Highest results seq assigned so far (0 before the first item)."""
        return self.results.last_seq

    @property
    def shed_total(self) -> int:
        """Results shed since this outbox was opened (``events.shed_total`` counts events)."""
        with self._lock:
            return self.results.shed_total

    def stats(self) -> tuple[int, int]:
        """(items pending, bytes pending) of results; see :meth:`total_stats` for both streams."""
        return self.results.stats()

    def total_stats(self) -> tuple[int, int]:
        """(items pending, bytes pending) over both streams: what the byte cap weighs."""
        with self._lock:
            return self.results.depth + self.events.depth, self.results.bytes + self.events.bytes

    def append(self, drafts: Sequence[ResultDraft]) -> list[int]:
        """Store result drafts durably with the next seqs (one transaction); shed over the cap."""
        return self._append(self.results, drafts)

    def append_events(self, drafts: Sequence[EventDraft]) -> list[int]:
        """Store event drafts durably with the next event seqs; shed over the cap (results first)."""
        return self._append(self.events, drafts)

    def _store_locked(self, stream: OutboxStream, bodies: list[bytes]) -> tuple[list[int], list[ShedReport]]:
        """Insert ``bodies`` and shed over the cap, in one transaction (the caller holds the lock)."""
        shed: list[ShedReport] = []
        with transaction(self._db):
            seqs = stream.insert_locked(bodies)
            excess = self.results.bytes + self.events.bytes - self.max_bytes
            # Results first: an alarm matters more than one more result. Events go only when
            # no result is left to shed.
            for victim in (self.results, self.events):
                if excess <= 0:
                    break
                report = victim.shed_locked(excess)
                if report is not None:
                    shed.append(report)
                    excess -= report.bytes
        return seqs, shed

    def _append(self, stream: OutboxStream, drafts: Sequence[ResultDraft | EventDraft]) -> list[int]:
        if not drafts:
            return []
        with self._lock:
            # Encoded under the lock: each item carries its seq, which is only certain here. A
            # draft that fails validation raises before anything is stored.
            first = stream.next_seq
            bodies = [encode(d.to_item(first + offset)) for offset, d in enumerate(drafts)]
            saved = [s.snapshot() for s in self.streams]
            try:
                seqs, shed = self._store_locked(stream, bodies)
            except sqlite3.Error:
                # Rolled back on disk (a full disk, an I/O error): so in memory too, or the next
                # append would skip the seqs this one took and the cloud would wait for them.
                for s, snapshot in zip(self.streams, saved, strict=True):
                    s.restore(snapshot)
                raise
        for report in shed:
            log.warning(
                "outbox over its %d-byte cap: SHED %d unacknowledged %s item(s) (seq %d..%d, %d bytes) "
                "of stream %s",
                self.max_bytes,
                report.count,
                report.kind,
                report.first_seq,
                report.last_seq,
                report.bytes,
                report.stream,
            )
            if self._on_shed is not None:
                self._on_shed(report)
        self._notify()
        return seqs

    def read_after(self, seq: int, limit: int, max_bytes: int | None = None) -> list[OutboxEntry]:
        """Results with seq > ``seq`` (see :meth:`OutboxStream.read_after`)."""
        return self.results.read_after(seq, limit, max_bytes)

    def oldest_seq(self) -> int | None:
        """Lowest results seq still held; None when empty."""
        return self.results.oldest_seq()

    def mark_sent(self, seqs: Sequence[int]) -> None:
        """Record that these results were published (a later re-send flags them ``replayed``)."""
        self.results.mark_sent(seqs)

    def ack(self, stream: str, acked_seq: int) -> int:
        """Apply the cloud's cumulative ack to the stream it names; return how many were deleted.

        An ack for neither stream (an earlier incarnation of this outbox, or a mix-up) is ignored.
        """
        for s in self.streams:
            if s.stream == stream:
                return s.ack(acked_seq)
        log.warning(
            "outbox: ignoring ack for stream %s (mine are %s and %s)",
            stream,
            self.results.stream,
            self.events.stream,
        )
        return 0

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def wait_for_change(self, timeout: float) -> None:
        """Block until an append or ack happens, or ``timeout`` passes."""
        with self.changed:
            self.changed.wait(timeout)

    def quick_check(self) -> list[str]:
        """SQLite's ``PRAGMA quick_check``: ``["ok"]`` for a sound file, else what is wrong."""
        with self._lock:
            return [str(row[0]) for row in self._db.execute("PRAGMA quick_check")]

    def close(self) -> None:
        """Close the database (checkpointing the WAL)."""
        with self._lock:
            self._db.close()
