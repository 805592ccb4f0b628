"""Production lines and their defect statistics in time buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, NamedTuple, TypeVarTuple

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import Integer, Select, case, cast, func, literal_column, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from cloud.api.deps import SessionDep
from cloud.api.filters import NOTES, TASK_HELP, TASK_SCHEMA, check_task, is_urgent_note
from cloud.api.params import Instant
from cloud.api.schemas import LinePublic, LineStats, StatsBucket
from cloud.db.models import Gateway, Result
from cloud.dispositions.service import review_counts
from protocol.messages import utcnow

router = APIRouter(prefix="/lines", tags=["lines"])
MAX_BUCKETS = 10_000
_Columns = TypeVarTuple("_Columns")


@router.get("")
def list_lines(session: SessionDep) -> list[LinePublic]:
    """Every line seen in gateways or results, with counts."""
    result_rows = session.execute(
        select(Result.line, func.count(), func.max(Result.captured_at)).group_by(Result.line)
    ).all()
    gateway_rows = session.execute(
        select(Gateway.line, func.count()).where(Gateway.line.is_not(None)).group_by(Gateway.line)
    ).all()
    gateways: dict[str, int] = {name: int(n) for name, n in gateway_rows if name is not None}
    counts: dict[str, int] = {name: int(n) for name, n, _ in result_rows}
    last: dict[str, datetime | None] = {name: _aware(at) for name, _, at in result_rows}
    return [
        LinePublic(
            line=name,
            gateways=gateways.get(name, 0),
            results=counts.get(name, 0),
            last_result_at=last.get(name),
        )
        for name in sorted(set(gateways) | set(counts))
    ]


def _aware(value: datetime | str | None) -> datetime | None:
    # Aggregates bypass the column type's result processing on SQLite, so re-attach UTC.
    if value is None or isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


@router.get("/{line}/stats", responses={404: {"description": "Unknown line"}})
def line_stats(
    line: str,
    session: SessionDep,
    since: Annotated[Instant | None, Query(description="Start (default: until - 24 h)")] = None,
    until: Annotated[Instant | None, Query(description="End, exclusive (default: now)")] = None,
    interval_s: Annotated[int, Query(ge=1, le=31 * 86400, description="Bucket width in seconds")] = 3600,
    task: Annotated[
        str | None,
        Query(description=f"{TASK_HELP} (every figure then counts one task)", json_schema_extra=TASK_SCHEMA),
    ] = None,
) -> LineStats:
    """Results, defects and defect rate (parcels and damaged parcels on parcel lines, notes and
    high-urgency notes where notes are written) per bucket of capture time; empty buckets included.

    A line may run several tasks (a camera and maintenance notes): ``task`` keeps one task's
    figures apart from the others', and ``results_by_task`` says which tasks the range holds.
    """
    task = check_task(task)
    end = until or utcnow()
    start = (since or end - timedelta(days=1)).replace(microsecond=0)  # buckets align to whole seconds
    if start >= end:
        raise HTTPException(
            422, detail=f"since ({start.isoformat()}) must be before until ({end.isoformat()})"
        )
    count = -(-int((end - start).total_seconds()) // interval_s)
    if count > MAX_BUCKETS:
        raise HTTPException(
            422,
            detail=f"{count} buckets requested; at most {MAX_BUCKETS} (raise interval_s or narrow the range)",
        )
    if not _line_exists(session, line):
        raise HTTPException(404, detail=f"line {line!r} not found")
    scope = _Scope(line, task, start, end)
    counted = _bucket_counts(session, scope, interval_s)
    buckets = []
    for i in range(count):
        n = counted.get(i, _NOTHING)
        b_start = start + timedelta(seconds=i * interval_s)
        buckets.append(
            StatsBucket(
                start=b_start,
                end=min(b_start + timedelta(seconds=interval_s), end),
                results=n.results,
                inspected=n.inspected,
                defects=n.defects,
                defect_rate=n.defects / n.inspected if n.inspected else None,
                parcels=n.parcels,
                damaged=n.damaged,
                damaged_rate=n.damaged / n.parcels if n.parcels else None,
                notes=n.notes,
                urgent_notes=n.urgent_notes,
            )
        )
    total = sum(b.results for b in buckets)
    inspected = sum(b.inspected for b in buckets)
    defects = sum(b.defects for b in buckets)
    parcels = sum(b.parcels for b in buckets)
    damaged = sum(b.damaged for b in buckets)
    return LineStats(
        line=line,
        task=task,
        since=start,
        until=end,
        interval_s=interval_s,
        results=total,
        results_by_task=_results_by_task(session, scope),
        inspected=inspected,
        defects=defects,
        defect_rate=defects / inspected if inspected else None,
        defects_by_label=_defects_by_label(session, scope),
        parcels=parcels,
        damaged=damaged,
        damaged_rate=damaged / parcels if parcels else None,
        parcels_by_lane=_parcels_by_lane(session, scope) if parcels else {},
        notes=sum(b.notes for b in buckets),
        urgent_notes=sum(b.urgent_notes for b in buckets),
        review=review_counts(session, line, start, end, task),
        buckets=buckets,
    )


class _Scope(NamedTuple):
    """The results a statistic counts: one line over ``[start, end)``, of one task or all."""

    line: str
    task: str | None
    start: datetime
    end: datetime

    def where(self, query: Select[*_Columns]) -> Select[*_Columns]:
        query = query.where(Result.line == self.line)
        query = query.where(Result.captured_at >= self.start, Result.captured_at < self.end)
        return query if self.task is None else query.where(Result.task == self.task)


class _Counts(NamedTuple):
    """What one bucket holds."""

    results: int
    inspected: int
    defects: int
    parcels: int
    damaged: int
    notes: int
    urgent_notes: int


_NOTHING = _Counts(0, 0, 0, 0, 0, 0, 0)


def _results_by_task(session: Session, scope: _Scope) -> dict[str, int]:
    """How many results of each task the scope holds, the most frequent first."""
    query = scope.where(select(Result.task, func.count().label("n")).group_by(Result.task))
    query = query.order_by(literal_column("n").desc(), Result.task)
    return {str(task): int(n) for task, n in session.execute(query)}


def _defects_by_label(session: Session, scope: _Scope) -> dict[str, int]:
    """Exact counts by the database (a sample of recent defects would miss the rare kinds)."""
    return _by_label(session, scope, Result.is_defect.is_(True))


def _parcels_by_lane(session: Session, scope: _Scope) -> dict[str, int]:
    """Parcels per sort lane: a parcel result's label is the lane it was routed to."""
    return _by_label(session, scope, _is_parcel())


def _by_label(session: Session, scope: _Scope, which: ColumnElement[bool]) -> dict[str, int]:
    """How many of the scope's results that are ``which`` carry each label, the most frequent first."""
    query = scope.where(select(Result.label, func.count().label("n")).where(which).group_by(Result.label))
    query = query.order_by(literal_column("n").desc(), Result.label)
    return {str(label): int(n) for label, n in session.execute(query)}


def _is_parcel() -> ColumnElement[bool]:
    # Parcel results carry no is_defect: their output's kind says what they are.
    is_parcel: ColumnElement[bool] = Result.output["kind"].as_string() == "parcel"
    return is_parcel


def _is_damaged() -> ColumnElement[bool]:
    damaged: ColumnElement[bool] = _is_parcel() & Result.output["damaged"].as_boolean().is_(True)
    return damaged


def _line_exists(session: Session, line: str) -> bool:
    in_results = session.scalar(select(Result.id).where(Result.line == line).limit(1))
    in_gateways = session.scalar(select(Gateway.id).where(Gateway.line == line).limit(1))
    return in_results is not None or in_gateways is not None


def _epoch_seconds(session: Session) -> ColumnElement[int]:
    """Whole seconds since 1970 of ``captured_at``, in the database's own dialect."""
    if session.get_bind().dialect.name == "sqlite":
        # Stored as UTC text; strftime('%s') reads it as UTC.
        return cast(func.strftime("%s", Result.captured_at), Integer)
    return cast(func.floor(func.extract("epoch", Result.captured_at)), Integer)


def _bucket_counts(session: Session, scope: _Scope, interval_s: int) -> dict[int, _Counts]:
    """{bucket index: what it holds} computed by the database."""
    offset = int(scope.start.timestamp())
    # Floor division: "/" is true division in SQLAlchemy 2 and a numeric cast would round.
    bucket = ((_epoch_seconds(session) - offset) // interval_s).label("bucket")
    query = (
        select(
            bucket,
            func.count(),
            func.sum(case((Result.is_defect.is_not(None), 1), else_=0)),
            func.sum(case((Result.is_defect.is_(True), 1), else_=0)),
            func.sum(case((_is_parcel(), 1), else_=0)),
            func.sum(case((_is_damaged(), 1), else_=0)),
            func.sum(case((Result.task == NOTES, 1), else_=0)),
            func.sum(case((is_urgent_note(), 1), else_=0)),
        )
        # By the label: PostgreSQL would not match two renderings of the expression's parameters.
        .group_by(literal_column("bucket"))
    )
    return {
        int(b): _Counts(int(n), int(i or 0), int(d or 0), int(p or 0), int(m or 0), int(t or 0), int(u or 0))
        for b, n, i, d, p, m, t, u in session.execute(scope.where(query))
    }
