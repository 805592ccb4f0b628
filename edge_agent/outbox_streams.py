"""One stream of the outbox: a table of items, its own stream id, seq counter and cumulative ack.

The outbox (``edge_agent.outbox``) holds two of these in one SQLite database, results and
events, behind one lock, so that a byte cap can weigh one against the other in one transaction.
Each stream acks, re-sends and sheds on its own, exactly as a single stream would.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

from protocol.messages import EventItem, EventValue, ModelRef, ResultItem, TaskOutput, decode, utcnow

log = logging.getLogger(__name__)

StreamKind = Literal["results", "events"]
EventLevel = Literal["info", "warning", "error"]


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
class EventDraft:
    """Everything of an EventItem except the ``seq``; the id is made here, once, so re-sends keep it."""

    kind: str
    level: EventLevel
    message: str
    details: dict[str, EventValue] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=utcnow)
    id: UUID = field(default_factory=uuid.uuid4)

    def to_item(self, seq: int) -> EventItem:
        """The validated wire item with ``seq`` (raises pydantic's ValidationError naming the field)."""
        return EventItem(
            id=self.id,
            seq=seq,
            timestamp=self.timestamp,
            level=self.level,
            kind=self.kind,
            message=self.message,
            details=self.details,
        )


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One stored item; ``attempts`` counts how often it was published before."""

    seq: int
    body: bytes
    size: int
    attempts: int

    def item(self) -> ResultItem:
        """The result item, flagged ``replayed`` when it was published before."""
        item = decode(ResultItem, self.body)
        return item.model_copy(update={"replayed": True}) if self.attempts > 0 else item

    def event_item(self) -> EventItem:
        """The event item, flagged ``replayed`` when it was published before."""
        item = decode(EventItem, self.body)
        return item.model_copy(update={"replayed": True}) if self.attempts > 0 else item


@dataclass(frozen=True, slots=True)
class ShedReport:
    """Items of one stream dropped unacknowledged to stay under the byte cap."""

    stream: str
    count: int
    bytes: int
    first_seq: int
    last_seq: int
    kind: StreamKind = "results"


class OutboxStream:
    """One stream's table and counters. Every method takes the outbox's lock; ``*_locked`` ones
    expect the caller to hold it (and, for writes, to run inside its transaction)."""

    def __init__(
        self,
        db: sqlite3.Connection,
        lock: threading.Lock,
        kind: StreamKind,
        table: str,
        key_prefix: str,
        notify: Callable[[], None],
    ) -> None:
        self.kind: StreamKind = kind
        self._db = db
        self._lock = lock
        self._table = table
        self._sql = _statements(table)
        self._key = {name: key_prefix + name for name in ("stream", "next_seq", "acked_seq")}
        self._notify = notify
        db.execute(self._sql["create"])
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if self._key["stream"] not in meta:
            # A new database: the stream starts at seq 1.
            fresh = {"stream": uuid.uuid4().hex, "next_seq": "1", "acked_seq": "0"}
            db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [(self._key[name], value) for name, value in sorted(fresh.items())],
            )
            meta.update({self._key[name]: value for name, value in fresh.items()})
        self.stream: str = meta[self._key["stream"]]
        self.next_seq = int(meta[self._key["next_seq"]])
        self._acked_seq = int(meta[self._key["acked_seq"]])
        count, total = db.execute(self._sql["totals"]).fetchone()
        self.depth, self.bytes = int(count), int(total)
        self.shed_total = 0

    @property
    def acked_seq(self) -> int:
        """Highest seq the cloud has acknowledged (cumulative)."""
        with self._lock:
            return self._acked_seq

    @property
    def last_seq(self) -> int:
        """Highest seq assigned so far (0 before the first item)."""
        with self._lock:
            return self.next_seq - 1

    def stats(self) -> tuple[int, int]:
        """(items pending, bytes pending) of this stream."""
        with self._lock:
            return self.depth, self.bytes

    def snapshot(self) -> tuple[int, int, int, int]:
        """The in-memory counters a transaction changes, to put back if it does not commit."""
        return self.next_seq, self.depth, self.bytes, self.shed_total

    def restore(self, saved: tuple[int, int, int, int]) -> None:
        self.next_seq, self.depth, self.bytes, self.shed_total = saved

    def insert_locked(self, bodies: Sequence[bytes]) -> list[int]:
        """Store encoded items under the next seqs (inside the caller's transaction)."""
        first = self.next_seq
        rows = [(first + offset, body, len(body)) for offset, body in enumerate(bodies)]
        self._db.executemany(self._sql["insert"], rows)
        self._db.execute(
            "UPDATE meta SET value = ? WHERE key = ?", (str(first + len(rows)), self._key["next_seq"])
        )
        self.next_seq = first + len(rows)
        self.depth += len(rows)
        self.bytes += sum(r[2] for r in rows)
        return [r[0] for r in rows]

    def shed_locked(self, excess: int) -> ShedReport | None:
        """Delete the oldest items until ``excess`` bytes are freed (or none is left)."""
        victims: list[tuple[int, int]] = []
        freed = 0
        for seq, size in self._db.execute(self._sql["sizes"]):
            if freed >= excess:
                break
            victims.append((int(seq), int(size)))
            freed += int(size)
        if not victims:
            return None
        last = victims[-1][0]
        self._db.execute(self._sql["delete_upto"], (last,))
        self.depth -= len(victims)
        self.bytes -= freed
        self.shed_total += len(victims)
        return ShedReport(self.stream, len(victims), freed, victims[0][0], last, self.kind)

    def read_after(self, seq: int, limit: int, max_bytes: int | None = None) -> list[OutboxEntry]:
        """Up to ``limit`` items with seq > ``seq`` in seq order, at most ``max_bytes`` of bodies (>= 1 item)."""
        with self._lock:
            cursor = self._db.execute(
                self._sql["read_after"],
                (seq, limit),
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
            row = self._db.execute(self._sql["oldest"]).fetchone()
            return None if row[0] is None else int(row[0])

    def mark_sent(self, seqs: Sequence[int]) -> None:
        """Record that these items were published (so a later re-send flags them ``replayed``)."""
        if not seqs:
            return
        with self._lock, _Transaction(self._db):
            self._db.executemany(self._sql["mark_sent"], [(s,) for s in seqs])

    def ack(self, acked_seq: int) -> int:
        """Apply the cloud's cumulative ack for this stream; return how many items were deleted."""
        with self._lock:
            if acked_seq >= self.next_seq:
                _log_clamp(self.kind, acked_seq, self.next_seq - 1)
                acked_seq = self.next_seq - 1
            if acked_seq <= self._acked_seq:
                return 0
            with _Transaction(self._db):
                row = self._db.execute(
                    self._sql["totals_upto"],
                    (acked_seq,),
                ).fetchone()
                self._db.execute(self._sql["delete_upto"], (acked_seq,))
                self._db.execute(
                    "UPDATE meta SET value = ? WHERE key = ?", (str(acked_seq), self._key["acked_seq"])
                )
            self._acked_seq = acked_seq
            self.depth -= int(row[0])
            self.bytes -= int(row[1])
            deleted = int(row[0])
        self._notify()
        return deleted


def _log_clamp(kind: str, acked_seq: int, assigned: int) -> None:
    log.warning("outbox: %s ack up to seq %d but only %d assigned; clamping", kind, acked_seq, assigned)


_TABLES = ("result_items", "event_items")


def _statements(table: str) -> dict[str, str]:
    """The SQL of one stream's table. The name is one of two constants, never outside input."""
    if table not in _TABLES:
        raise ValueError(f"outbox: unknown stream table {table!r} (known: {', '.join(_TABLES)})")
    return {
        "create": f"CREATE TABLE IF NOT EXISTS {table} (seq INTEGER PRIMARY KEY, body BLOB NOT NULL, "
        "size INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0)",
        "totals": f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM {table}",  # noqa: S608
        "totals_upto": f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM {table} WHERE seq <= ?",  # noqa: S608
        "insert": f"INSERT INTO {table} (seq, body, size) VALUES (?, ?, ?)",  # noqa: S608
        "sizes": f"SELECT seq, size FROM {table} ORDER BY seq",  # noqa: S608
        "delete_upto": f"DELETE FROM {table} WHERE seq <= ?",  # noqa: S608
        "read_after": f"SELECT seq, body, size, attempts FROM {table} WHERE seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
        "oldest": f"SELECT MIN(seq) FROM {table}",  # noqa: S608
        "mark_sent": f"UPDATE {table} SET attempts = attempts + 1 WHERE seq = ?",  # noqa: S608
    }


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (the sqlite3 module's implicit ones are off)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self._db.execute("ROLLBACK")
            return
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error:
            # A COMMIT that fails (a full disk) may leave the transaction open: end it, so the
            # next BEGIN starts clean, and let the caller see the failure.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise


def transaction(db: sqlite3.Connection) -> _Transaction:
    """A write transaction on ``db`` (for the outbox's multi-stream appends)."""
    return _Transaction(db)
