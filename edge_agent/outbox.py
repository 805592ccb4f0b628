"""The durable result outbox: SQLite in WAL mode, written before publish, cleared by the cloud's ack.

A broker's PUBACK is not durability (a SIGKILLed Mosquitto loses what it acknowledged), so an
item leaves the outbox only when the cloud's cumulative ``Ack`` for this outbox's ``stream``
covers its ``seq``. ``seq`` is assigned here, per stream, 1, 2, 3, ... and never reused: the next
value is persisted in the same transaction as the items that took it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID

from protocol.messages import ModelRef, ResultItem, TaskOutput, decode, encode

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY,
    body BLOB NOT NULL,
    size INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True, slots=True)
class ResultDraft:
    """Everything of a ResultItem except the ``seq`` the outbox assigns."""

    id: UUID
    captured_at: datetime
    inferred_at: datetime
    line: str
    station: str
    source: str
    frame: str
    model: ModelRef
    output: TaskOutput
    latency_ms: float
    thumbnail_jpeg: str | None = None  # base64 JPEG of a flagged item (edge_agent.thumbnails)

    def to_item(self, seq: int) -> ResultItem:
        """The validated wire item with ``seq``."""
        return ResultItem(
            id=self.id,
            seq=seq,
            captured_at=self.captured_at,
            inferred_at=self.inferred_at,
            line=self.line,
            station=self.station,
            source=self.source,
            frame=self.frame,
            model=self.model,
            output=self.output,
            latency_ms=self.latency_ms,
            thumbnail_jpeg=self.thumbnail_jpeg,
        )


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One stored item; ``attempts`` counts how often it was published before."""

    seq: int
    body: bytes
    size: int
    attempts: int

    def item(self) -> ResultItem:
        """The wire item, flagged ``replayed`` when it was published before."""
        item = decode(ResultItem, self.body)
        return item.model_copy(update={"replayed": True}) if self.attempts > 0 else item


@dataclass(frozen=True, slots=True)
class ShedReport:
    """Items dropped unacknowledged to stay under the byte cap."""

    stream: str
    count: int
    bytes: int
    first_seq: int
    last_seq: int


class Outbox:
    """Thread-safe (one connection behind a lock) durable queue of result items."""

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
        self._db.executescript(_SCHEMA)
        with self._tx():
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            if "stream" not in meta:
                meta = {"stream": uuid.uuid4().hex, "next_seq": "1", "acked_seq": "0"}
                self._db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", sorted(meta.items()))
        self.stream: str = meta["stream"]
        self._next_seq = int(meta["next_seq"])
        self._acked_seq = int(meta["acked_seq"])
        count, total = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items").fetchone()
        self._depth, self._bytes = int(count), int(total)
        self.shed_total = 0
        log.info(
            "outbox %s: stream %s, %d item(s) pending, next seq %d", path, self.stream, count, self._next_seq
        )

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    @property
    def acked_seq(self) -> int:
        """Highest seq the cloud has acknowledged (cumulative)."""
        with self._lock:
            return self._acked_seq

    @property
    def last_seq(self) -> int:
        """Highest seq assigned so far (0 before the first item)."""
        with self._lock:
            return self._next_seq - 1

    def stats(self) -> tuple[int, int]:
        """(items pending, bytes pending)."""
        with self._lock:
            return self._depth, self._bytes

    def append(self, drafts: Sequence[ResultDraft]) -> list[int]:
        """Store drafts durably with the next seqs (one transaction); shed the oldest over the cap."""
        if not drafts:
            return []
        shed: ShedReport | None = None
        with self._lock:
            first = self._next_seq
            rows = []
            for offset, draft in enumerate(drafts):
                body = encode(draft.to_item(first + offset))
                rows.append((first + offset, body, len(body)))
            added = sum(r[2] for r in rows)
            with self._tx():
                self._db.executemany("INSERT INTO items (seq, body, size) VALUES (?, ?, ?)", rows)
                self._db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'next_seq'", (str(first + len(rows)),)
                )
                if self._bytes + added > self.max_bytes:
                    shed = self._shed_locked(self._bytes + added - self.max_bytes)
            self._next_seq = first + len(rows)
            self._depth += len(rows)
            self._bytes += added
            if shed is not None:
                self._depth -= shed.count
                self._bytes -= shed.bytes
                self.shed_total += shed.count
        if shed is not None:
            log.warning(
                "outbox over its %d-byte cap: SHED %d unacknowledged item(s) (seq %d..%d, %d bytes) of stream %s",
                self.max_bytes,
                shed.count,
                shed.first_seq,
                shed.last_seq,
                shed.bytes,
                self.stream,
            )
            if self._on_shed is not None:
                self._on_shed(shed)
        self._notify()
        return [r[0] for r in rows]

    def _shed_locked(self, excess: int) -> ShedReport | None:
        victims: list[tuple[int, int]] = []
        freed = 0
        for seq, size in self._db.execute("SELECT seq, size FROM items ORDER BY seq"):
            if freed >= excess:
                break
            victims.append((int(seq), int(size)))
            freed += int(size)
        if not victims:
            return None
        last = victims[-1][0]
        self._db.execute("DELETE FROM items WHERE seq <= ?", (last,))
        return ShedReport(self.stream, len(victims), freed, victims[0][0], last)

    def read_after(self, seq: int, limit: int, max_bytes: int | None = None) -> list[OutboxEntry]:
        """Up to ``limit`` items with seq > ``seq`` in seq order, at most ``max_bytes`` of bodies (>= 1 item)."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT seq, body, size, attempts FROM items WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
            )
            entries: list[OutboxEntry] = []
            total = 0
            for row in cursor:
                entry = OutboxEntry(int(row[0]), bytes(row[1]), int(row[2]), int(row[3]))
                if max_bytes is not None and entries and total + entry.size > max_bytes:
                    break
                entries.append(entry)
                total += entry.size
            return entries

    def oldest_seq(self) -> int | None:
        """Lowest seq still held (every lower one was acknowledged or shed); None when empty."""
        with self._lock:
            row = self._db.execute("SELECT MIN(seq) FROM items").fetchone()
            return None if row[0] is None else int(row[0])

    def mark_sent(self, seqs: Sequence[int]) -> None:
        """Record that these items were published (so a later re-send flags them ``replayed``)."""
        if not seqs:
            return
        with self._lock, self._tx():
            self._db.executemany(
                "UPDATE items SET attempts = attempts + 1 WHERE seq = ?", [(s,) for s in seqs]
            )

    def ack(self, stream: str, acked_seq: int) -> int:
        """Apply the cloud's cumulative ack; delete covered items; return how many were deleted.

        An ack for another stream (an earlier incarnation of this outbox, or a mix-up) is ignored.
        """
        if stream != self.stream:
            log.warning("outbox: ignoring ack for stream %s (mine is %s)", stream, self.stream)
            return 0
        with self._lock:
            if acked_seq >= self._next_seq:
                log.warning(
                    "outbox: ack up to seq %d but only %d assigned; clamping", acked_seq, self._next_seq - 1
                )
                acked_seq = self._next_seq - 1
            if acked_seq <= self._acked_seq:
                return 0
            with self._tx():
                row = self._db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items WHERE seq <= ?", (acked_seq,)
                ).fetchone()
                self._db.execute("DELETE FROM items WHERE seq <= ?", (acked_seq,))
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'acked_seq'", (str(acked_seq),))
            self._acked_seq = acked_seq
            self._depth -= int(row[0])
            self._bytes -= int(row[1])
            deleted = int(row[0])
        self._notify()
        return deleted

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def wait_for_change(self, timeout: float) -> None:
        """Block until an append or ack happens, or ``timeout`` passes."""
        with self.changed:
            self.changed.wait(timeout)

    def close(self) -> None:
        """Close the database (checkpointing the WAL)."""
        with self._lock:
            self._db.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (the sqlite3 module's implicit ones are off)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
