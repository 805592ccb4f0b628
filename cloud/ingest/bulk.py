"""Idempotent bulk insert of result rows, the hot path of ingest.

On PostgreSQL a multi-row ``INSERT .. VALUES`` of a few thousand rows spends most of its time in
the driver re-parsing a statement with tens of thousands of placeholders. Instead the rows are
streamed with COPY into a temporary staging table and moved with one ``INSERT .. SELECT .. ON
CONFLICT DO NOTHING``: COPY speed, same idempotency on the item id, same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.db.dialect import insert_ignore, table_of
from cloud.db.models import Result

_STAGING = "results_staging"


def insert_results(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert ``rows`` into results, skipping ids already stored; return how many were new."""
    if not rows:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        return _copy_insert(session, rows)
    stmt = insert_ignore(session, Result).returning(table_of(Result).c.id)
    return len(session.execute(stmt, list(rows)).all())


def _copy_insert(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    columns = [c.name for c in table_of(Result).columns]
    session.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (LIKE results INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
    )
    driver = session.connection().connection.driver_connection
    column_list = ", ".join(columns)
    with driver.cursor() as cursor, cursor.copy(f"COPY {_STAGING} ({column_list}) FROM STDIN") as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row([json.dumps(row[c]) if c == "output" else row[c] for c in columns])
    # Every name in these statements comes from the ORM table, never from a message.
    move = f"INSERT INTO results ({column_list}) SELECT {column_list} FROM {_STAGING} ON CONFLICT (id) DO NOTHING"  # noqa: S608
    result = session.execute(text(move))
    # ON COMMIT DELETE ROWS empties the staging table at commit; a rolled-back transaction
    # discards its rows too, so nothing can leak into the next batch.
    return int(result.rowcount)  # type: ignore[attr-defined]
