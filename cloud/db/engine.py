"""Engine and session construction, and waiting for a database that is still starting."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


def make_engine(db_url: str) -> Engine:
    """Create an engine for ``db_url`` with the per-dialect settings the cloud relies on."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the API read while ingest writes; foreign keys are off by default in SQLite.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def wait_for_db(engine: Engine, timeout_s: float) -> None:
    """Block until the database answers ``SELECT 1``; raise RuntimeError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    delay = 0.2
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return
        except OperationalError as exc:
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"database {engine.url.render_as_string(hide_password=True)} not reachable "
                    f"after {timeout_s:.0f} s: {exc.orig}"
                ) from exc
            log.warning(
                "waiting for database %s (%s); retrying in %.1f s",
                engine.url.render_as_string(hide_password=True),
                exc.orig,
                delay,
            )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
