"""Opaque keyset cursors for newest-first lists: (timestamp, id) of the last row of a page."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Keyset:
    """How one list pages newest first: its (timestamp, id) columns and how its ids go into a cursor.

    ``load_id`` turns the id read from a cursor back into the column's type and raises
    ``ValueError`` when the cursor was not made by this list.
    """

    at: InstrumentedAttribute[Any]
    id: InstrumentedAttribute[Any]
    dump_id: Callable[[Any], str | int]
    load_id: Callable[[object], object]


def newest_first_page(
    session: Session, query: Select[T], keys: Keyset, cursor: str | None, offset: int, limit: int
) -> tuple[list[T], dict[str, Any]]:
    """One page of ``query`` newest first, after ``cursor`` or from ``offset``, and the page's
    ``limit``, ``offset``, ``next_offset`` and ``next_cursor`` (a 422 names a bad cursor)."""
    if cursor is not None and offset:
        raise HTTPException(422, detail="use either cursor or offset, not both")
    query = query.order_by(keys.at.desc(), keys.id.desc())
    if cursor is not None:
        at, raw_id = decode_cursor(cursor)
        try:
            after_id = keys.load_id(raw_id)
        except ValueError as exc:
            raise HTTPException(422, detail=f"cursor {cursor[:40]!r} is not valid: {exc}") from None
        query = query.where(after_cursor(keys.at, keys.id, at, after_id))
    rows, more = fetch_page(session, query, offset, limit)
    last = rows[-1] if more else None
    return rows, {
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more and cursor is None else None,
        "next_cursor": None
        if last is None
        else encode_cursor(getattr(last, keys.at.key), keys.dump_id(getattr(last, keys.id.key))),
    }
