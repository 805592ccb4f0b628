"""CSV export of results, notes, dispositions and alerts over a range, written in batches.

Rows are read from a server-side cursor (``yield_per``: a named cursor on PostgreSQL) and each
batch is formatted and handed on before the next is fetched, so memory holds one batch whatever
the range: a month of results streams like an hour of them (``bench/export_memory.py``).

Every file starts with a header row; its columns are the ones listed in :data:`KINDS`, in that
order. Rows come oldest first by the kind's time column (ties by id). Times are ISO 8601 in UTC
with microseconds and a ``Z``; booleans ``true``/``false``; a result's ``output`` is its JSON as
stored; a missing value is an empty cell.
Free text (notes, frame references, alert messages, who did what) that begins with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return gets a leading ``'``, so a spreadsheet shows it instead
of running it as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import Select, Text, cast, select
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.sql import ColumnElement

from cloud.db.models import Alert, Disposition, Result

BATCH_ROWS = 1000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class Cell(Enum):
    """How a column's values are written."""

    PLAIN = "plain"
    TEXT = "text"  # free text: guarded against spreadsheet formulas
    TIME = "time"


@dataclass(frozen=True)
class ExportKind:
    """One exportable list: its columns, the time its range bounds, and the columns it filters on."""

    name: str
    columns: tuple[tuple[str, ColumnElement[Any] | InstrumentedAttribute[Any], Cell], ...]
    at: InstrumentedAttribute[datetime]
    order_id: InstrumentedAttribute[Any]
    line: InstrumentedAttribute[str]
    gateway: InstrumentedAttribute[Any]
    narrow: Callable[[Select[Any]], Select[Any]] = lambda query: query

    @property
    def header(self) -> list[str]:
        return [name for name, _, _ in self.columns]


@dataclass(frozen=True)
class ExportRange:
    """What to export: ``[since, until)`` of the kind's time, optionally one line or gateway."""

    since: datetime
    until: datetime
    line: str | None = None
    gateway: str | None = None


def _results() -> ExportKind:
    columns = (
        ("id", Result.id, Cell.PLAIN), ("captured_at", Result.captured_at, Cell.TIME),
        ("inferred_at", Result.inferred_at, Cell.TIME), ("received_at", Result.received_at, Cell.TIME),
        ("line", Result.line, Cell.PLAIN), ("gateway_id", Result.gateway_id, Cell.PLAIN),
        ("station", Result.station, Cell.PLAIN), ("source", Result.source, Cell.PLAIN),
        ("frame", Result.frame, Cell.TEXT), ("model_name", Result.model_name, Cell.PLAIN),
        ("model_version", Result.model_version, Cell.PLAIN), ("task", Result.task, Cell.PLAIN),
        ("label", Result.label, Cell.PLAIN), ("is_defect", Result.is_defect, Cell.PLAIN),
        ("score", Result.score, Cell.PLAIN), ("latency_ms", Result.latency_ms, Cell.PLAIN),
        ("replayed", Result.replayed, Cell.PLAIN), ("disposition", Disposition.disposition, Cell.PLAIN),
        ("disposition_by", Disposition.actor, Cell.TEXT), ("disposition_at", Disposition.at, Cell.TIME),
        # The JSON text as stored: parsing and writing it again would cost a quarter of the export.
        ("output", cast(Result.output, Text), Cell.PLAIN),
    )  # fmt: skip
    joined = lambda query: query.outerjoin(Disposition, Disposition.result_id == Result.id)  # noqa: E731
    return ExportKind(
        "results", columns, Result.captured_at, Result.id, Result.line, Result.gateway_id, joined
    )


def _notes() -> ExportKind:
    columns = (
        ("id", Result.id, Cell.PLAIN), ("captured_at", Result.captured_at, Cell.TIME),
        ("line", Result.line, Cell.PLAIN), ("gateway_id", Result.gateway_id, Cell.PLAIN),
        ("station", Result.station, Cell.PLAIN), ("source", Result.source, Cell.PLAIN),
        ("note_ref", Result.frame, Cell.TEXT), ("model_name", Result.model_name, Cell.PLAIN),
        ("model_version", Result.model_version, Cell.PLAIN),
        ("category", Result.output["category"].as_string(), Cell.PLAIN), ("category_score", Result.score, Cell.PLAIN),
        ("urgency", Result.output["urgency"].as_string(), Cell.PLAIN),
        ("urgency_score", Result.output["urgency_score"].as_float(), Cell.PLAIN),
        ("text", Result.output["text"].as_string(), Cell.TEXT),
    )  # fmt: skip
    only_notes = lambda query: query.where(Result.task == "notes")  # noqa: E731
    return ExportKind(
        "notes", columns, Result.captured_at, Result.id, Result.line, Result.gateway_id, only_notes
    )


def _dispositions() -> ExportKind:
    columns = (
        ("result_id", Disposition.result_id, Cell.PLAIN), ("at", Disposition.at, Cell.TIME),
        ("actor", Disposition.actor, Cell.TEXT), ("disposition", Disposition.disposition, Cell.PLAIN),
        ("note", Disposition.note, Cell.TEXT), ("line", Disposition.line, Cell.PLAIN),
        ("gateway_id", Disposition.gateway_id, Cell.PLAIN), ("model_name", Disposition.model_name, Cell.PLAIN),
        ("model_version", Disposition.model_version, Cell.PLAIN), ("task", Disposition.task, Cell.PLAIN),
        ("label", Disposition.label, Cell.PLAIN), ("captured_at", Disposition.captured_at, Cell.TIME),
    )  # fmt: skip
    keys = (Disposition.at, Disposition.result_id, Disposition.line, Disposition.gateway_id)
    return ExportKind("dispositions", columns, *keys)


def _alerts() -> ExportKind:
    columns = (
        ("id", Alert.id, Cell.PLAIN), ("opened_at", Alert.opened_at, Cell.TIME),
        ("closed_at", Alert.closed_at, Cell.TIME), ("line", Alert.line, Cell.PLAIN),
        ("gateway_id", Alert.gateway_id, Cell.PLAIN), ("subject", Alert.subject, Cell.TEXT),
        ("kind", Alert.kind, Cell.PLAIN), ("message", Alert.message, Cell.TEXT),
        ("value", Alert.value, Cell.PLAIN), ("rule_id", Alert.rule_id, Cell.PLAIN),
        ("acknowledged_by", Alert.acknowledged_by, Cell.TEXT), ("acknowledged_at", Alert.acknowledged_at, Cell.TIME),
    )  # fmt: skip
    return ExportKind("alerts", columns, Alert.opened_at, Alert.id, Alert.line, Alert.gateway_id)


KINDS: dict[str, ExportKind] = {
    kind.name: kind for kind in (_results(), _notes(), _dispositions(), _alerts())
}


def query_of(kind: ExportKind, bounds: ExportRange) -> Select[Any]:
    """The kind's rows in ``bounds``, oldest first."""
    query = kind.narrow(select(*(column for _, column, _ in kind.columns)))
    query = query.where(kind.at >= bounds.since, kind.at < bounds.until)
    if bounds.line is not None:
        query = query.where(kind.line == bounds.line)
    if bounds.gateway is not None:
        query = query.where(kind.gateway == bounds.gateway)
    return query.order_by(kind.at, kind.order_id)


def cell(value: Any, how: Cell) -> str:
    """One value as its CSV cell (see the module's docstring)."""
    if value is None:
        return ""
    if how is Cell.TIME:
        return str(value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if how is Cell.TEXT and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def csv_chunks(
    sessions: sessionmaker[Session], kind: ExportKind, bounds: ExportRange, batch_rows: int = BATCH_ROWS
) -> Iterator[bytes]:
    """The CSV of ``kind`` in ``bounds`` as UTF-8 chunks: the header, then one chunk per batch."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    kinds = [how for _, _, how in kind.columns]

    def flush() -> bytes:
        chunk = buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
        return chunk

    writer.writerow(kind.header)
    yield flush()
    with sessions() as session:
        rows = session.execute(query_of(kind, bounds).execution_options(yield_per=batch_rows))
        for batch in rows.partitions():
            writer.writerows(
                [cell(value, how) for value, how in zip(row, kinds, strict=True)] for row in batch
            )
            yield flush()
