"""Dialect-specific statements the ORM does not abstract: INSERT ... ON CONFLICT DO NOTHING."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session


def table_of(model: type[DeclarativeBase]) -> Table:
    """The Core table of an ORM model (for executemany inserts that skip the ORM's unit of work)."""
    return cast(Table, model.__table__)


def insert_ignore(session: Session, model: type[DeclarativeBase]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``model``'s table that silently skips rows whose key already exists."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table_of(model)).on_conflict_do_nothing()
    if name == "sqlite":
        return sqlite.insert(table_of(model)).on_conflict_do_nothing()
    raise RuntimeError(f"database dialect {name!r} is not supported (use PostgreSQL or SQLite)")
