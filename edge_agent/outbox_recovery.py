"""Opening the outbox when its file is damaged (a truncated file, a garbage page after a disk
fault): the agent must start and keep the line's results flowing, not stop at the first query.

The damaged file is moved aside whole (with its WAL and shared-memory files), never deleted, so
what can be salvaged from it still can be (``sqlite3 FILE .recover``); a fresh outbox with a new
stream id takes its place, so the cloud numbers the new results apart from the old ones.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.outbox import Outbox, ShedReport
from protocol.messages import utcnow

log = logging.getLogger(__name__)
SIDE_FILES = ("-wal", "-shm")


@dataclass(frozen=True)
class Recovered:
    """A damaged outbox moved aside: where to, and what SQLite said."""

    moved_to: Path
    error: str


def _check(outbox: Outbox) -> str | None:
    """None if SQLite finds the file sound, else what it found."""
    rows = outbox.quick_check()
    return None if rows == ["ok"] else "; ".join(rows[:5])


def open_outbox(
    path: Path, max_bytes: int, on_shed: Callable[[ShedReport], None] | None = None
) -> tuple[Outbox, Recovered | None]:
    """The outbox at ``path``; if the file is damaged, moved aside and replaced by a fresh one."""
    error: str | None
    try:
        outbox = Outbox(path, max_bytes, on_shed=on_shed)
        error = _check(outbox)
        if error is None:
            return outbox, None
        outbox.close()
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        error = str(exc)
    moved_to = path.with_name(f"{path.name}.damaged-{utcnow().strftime('%Y%m%dT%H%M%S%f')}")
    path.rename(moved_to)
    for suffix in SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(moved_to.with_name(moved_to.name + suffix))
    log.error("outbox %s is damaged (%s): moved to %s, starting a fresh outbox", path, error, moved_to)
    return Outbox(path, max_bytes, on_shed=on_shed), Recovered(moved_to, error)
