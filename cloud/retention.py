"""Retention: delete results, events and dead letters older than a number of days.

The logic lives here as a plain function; the Celery task in ``cloud.tasks`` only wraps it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, delete
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.models import DeadLetter, Event, Result
from protocol.messages import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionOutcome:
    """What one retention run deleted."""

    cutoff: datetime
    results: int
    events: int
    dead_letters: int

    def as_dict(self) -> dict[str, str | int]:
        """JSON-friendly form (the Celery task's return value)."""
        out: dict[str, str | int] = {k: v for k, v in asdict(self).items() if k != "cutoff"}
        out["cutoff"] = self.cutoff.isoformat()
        return out


def _deleted(session: Session, stmt: Delete) -> int:
    result = cast(CursorResult[Any], session.execute(stmt))
    return int(result.rowcount)


def purge_older_than(
    sessions: sessionmaker[Session], days: int, now: datetime | None = None
) -> RetentionOutcome:
    """Delete rows older than ``days`` (results by capture time, the rest by receipt) in one transaction."""
    if days < 1:
        raise ValueError(f"retention days must be >= 1, got {days}")
    cutoff = (now or utcnow()) - timedelta(days=days)
    with sessions.begin() as session:
        results = _deleted(session, delete(Result).where(Result.captured_at < cutoff))
        events = _deleted(session, delete(Event).where(Event.received_at < cutoff))
        dead = _deleted(session, delete(DeadLetter).where(DeadLetter.received_at < cutoff))
    outcome = RetentionOutcome(cutoff=cutoff, results=results, events=events, dead_letters=dead)
    log.info(
        "retention: deleted %d result(s), %d event(s), %d dead letter(s) older than %s",
        results,
        events,
        dead,
        cutoff.isoformat(),
    )
    return outcome
