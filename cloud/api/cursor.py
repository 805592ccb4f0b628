"""Opaque keyset cursors for newest-first lists: (timestamp, id) of the last row of a page."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any, TypeVar

from fastapi import HTTPException
from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

T = TypeVar("T")


def encode_cursor(at: datetime, row_id: str | int) -> str:
    """A cursor pointing just after the row with this timestamp and id in newest-first order."""
    raw = json.dumps({"t": at.isoformat(), "id": row_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, object]:
    """(timestamp, id as encoded) of a cursor from :func:`encode_cursor`; a 422 names the problem.

    The caller checks the id's type, which differs per list.
    """
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at = datetime.fromisoformat(raw["t"])
        row_id: object = raw["id"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise HTTPException(422, detail=f"cursor {cursor[:40]!r} is not valid: {exc}") from None
    if at.tzinfo is None:
        raise HTTPException(422, detail="cursor is not valid: timestamp without timezone")
    return at, row_id


def after_cursor(
    at_column: InstrumentedAttribute[Any], id_column: InstrumentedAttribute[Any], at: datetime, row_id: object
) -> ColumnElement[bool]:
    """The rows after a cursor's row in newest-first (timestamp, id) order."""
    return or_(at_column < at, and_(at_column == at, id_column < row_id))


def fetch_page(session: Session, query: Select[T], offset: int, limit: int) -> tuple[list[T], bool]:
    """Up to ``limit`` rows from ``offset`` and whether more follow: one row more than asked says
    so without a count(*)."""
    rows = session.scalars(query.offset(offset).limit(limit + 1)).all()
    return list(rows[:limit]), len(rows) > limit
