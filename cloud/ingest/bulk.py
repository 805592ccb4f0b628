"""Idempotent bulk insert of result rows, the hot path of ingest.

On PostgreSQL the rows go in with COPY. A stream whose seqs in this drain are all new (one index
probe on (gateway_id, stream, seq) says so) is copied straight into ``results``; the rest (a
re-send, a batch mixing old and new seqs) goes through a temporary staging table and one
``INSERT .. SELECT .. ON CONFLICT (id) DO NOTHING``. The direct COPY runs under a savepoint: if an
id turns out to be stored already after all, it is rolled back and those rows take the staging
path too, so nothing is ever doubled and the transaction survives.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy.orm import Session

from cloud.db.dialect import insert_ignore, table_of
from cloud.db.models import Result
from cloud.ingest.rows import COPY_COLUMNS, ReceivedBatch, copy_text, result_rows, unique_items
from protocol.messages import ResultBatch, ResultItem

log = logging.getLogger(__name__)

_STAGING = "results_staging"
_COLUMN_LIST = ", ".join(COPY_COLUMNS)
_CHUNK_ROWS = 250  # rows formatted per write into a COPY
Item = tuple[ResultBatch, ResultItem, datetime]
# Which of the drain's (gateway, stream, lowest seq, highest seq) ranges hold a stored row already:
# one round trip, one index range probe per stream.
_PROBE = """
SELECT p.g, p.s FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[]) AS p(g, s, lo, hi)
WHERE EXISTS (SELECT 1 FROM results r WHERE r.gateway_id = p.g AND r.stream = p.s AND r.seq BETWEEN p.lo AND p.hi)
"""


def insert_results(session: Session, batches: Sequence[ReceivedBatch]) -> int:
    """Insert the items of ``batches``, skipping ids already stored; return how many were new."""
    items = unique_items(batches)
    if not items:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        return _copy_insert(session, items)
    stmt = insert_ignore(session, Result).returning(table_of(Result).c.id)
    return len(session.execute(stmt, result_rows(items)).all())


def _copy_insert(session: Session, items: list[Item]) -> int:
    driver = session.connection().connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"bulk insert needs a psycopg 3 connection, got {type(driver).__name__}")
    seen = _streams_with_stored_seqs(driver, items)
    fresh = [i for i in items if (i[0].gateway_id, i[0].stream) not in seen]
    known = [i for i in items if (i[0].gateway_id, i[0].stream) in seen] if seen else []
    inserted = 0
    if fresh:
        copied = _copy_direct(driver, fresh)
        if copied is None:
            known = items  # an id was stored after all: let ON CONFLICT sort them all out
        else:
            inserted = copied
    if known:
        inserted += _copy_staged(driver, known)
    return inserted


def _streams_with_stored_seqs(driver: psycopg.Connection[Any], items: list[Item]) -> set[tuple[str, str]]:
    ranges: dict[tuple[str, str], list[int]] = {}
    for batch, item, _ in items:
        span = ranges.get((batch.gateway_id, batch.stream))
        if span is None:
            ranges[(batch.gateway_id, batch.stream)] = [item.seq, item.seq]
        elif item.seq < span[0]:
            span[0] = item.seq
        elif item.seq > span[1]:
            span[1] = item.seq
    keys = list(ranges)
    params = (
        [g for g, _ in keys],
        [s for _, s in keys],
        [ranges[k][0] for k in keys],
        [ranges[k][1] for k in keys],
    )
    with driver.cursor() as cursor:
        cursor.execute(_PROBE, params)
        return {(str(g), str(s)) for g, s in cursor.fetchall()}


def _copy_direct(driver: psycopg.Connection[Any], items: list[Item]) -> int | None:
    """COPY ``items`` into results; None (and nothing written) if one of their ids is stored."""
    with driver.cursor() as cursor:
        cursor.execute("SAVEPOINT ingest_direct_copy")
        try:
            with cursor.copy(f"COPY results ({_COLUMN_LIST}) FROM STDIN") as copy:
                for chunk in _chunks(items):
                    copy.write(chunk)
        except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected) as exc:
            # Same seqs under other ids never get here (the probe saw them); this is an id that
            # came back under another stream or seq, or another worker storing the same items
            # right now (they wait on each other's ids, or deadlock if each holds some of both).
            log.info("direct COPY met a stored id (%s); inserting through staging", exc.diag.message_detail)
            cursor.execute("ROLLBACK TO SAVEPOINT ingest_direct_copy")
            return None
        cursor.execute("RELEASE SAVEPOINT ingest_direct_copy")
    return len(items)


def _copy_staged(driver: psycopg.Connection[Any], items: list[Item]) -> int:
    with driver.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (LIKE results INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY {_STAGING} ({_COLUMN_LIST}) FROM STDIN") as copy:
            for chunk in _chunks(items):
                copy.write(chunk)
        # Every name in this statement comes from this module, never from a message.
        cursor.execute(
            f"INSERT INTO results ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM {_STAGING} "  # noqa: S608
            "ON CONFLICT (id) DO NOTHING"
        )
        # ON COMMIT DELETE ROWS empties the staging table at commit; a rolled-back transaction
        # discards its rows too, so nothing can leak into the next drain.
        return cursor.rowcount


def _chunks(items: list[Item]) -> Iterator[str]:
    # Sent as it is formatted, so the server parses and inserts one chunk while this process
    # formats the next (they run on different cores) instead of waiting for the whole drain.
    for start in range(0, len(items), _CHUNK_ROWS):
        yield copy_text(items[start : start + _CHUNK_ROWS])
