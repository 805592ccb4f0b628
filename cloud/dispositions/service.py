"""Setting a result's disposition (audited) and counting a line's reviews."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from cloud.auth.service import Principal, audit
from cloud.db.models import Disposition, Result
from cloud.dispositions.schemas import VERDICTS, DispositionKind, DispositionSet, ReviewCounts
from protocol.inference import NOTE_CATEGORIES
from protocol.messages import utcnow

# Results whose label an operator may set, and the labels each task's trainer can learn.
LABELLED_TASKS: dict[str, tuple[str, ...]] = {"notes": NOTE_CATEGORIES}


class NotFound(LookupError):
    """No such result; the message names it."""


class NotFlagged(ValueError):
    """A verdict on a result its model did not flag; the message says why it is refused."""


class BadLabel(ValueError):
    """A ``labelled`` disposition without a label the result's task knows, or a label on another
    disposition; the message says what to send."""


def flagged() -> ColumnElement[bool]:
    """Results their model flagged: a defect, or a parcel it found damaged (no is_defect there)."""
    clause: ColumnElement[bool] = or_(
        Result.is_defect.is_(True), Result.output["damaged"].as_boolean().is_(True)
    )
    return clause


def is_flagged(result: Result) -> bool:
    """:func:`flagged` of one loaded result."""
    return result.is_defect is True or (
        result.output.get("kind") == "parcel" and result.output.get("damaged") is True
    )


def set_disposition(session: Session, result_id: UUID, body: DispositionSet, who: Principal) -> Disposition:
    """Give ``result_id`` the disposition ``body`` (replacing its current one) and audit it.

    The result's row is locked first, so two operators judging it at once queue and the audit
    log's ``previous`` is right. ``confirmed_defect`` and ``false_reject`` need a flagged result.
    """
    # FOR NO KEY UPDATE: ingest's foreign-key checks (KEY SHARE) are not blocked by it.
    locked = select(Result).where(Result.id == result_id).with_for_update(key_share=True)
    result = session.scalar(locked)
    if result is None:
        raise NotFound(f"result {result_id} not found")
    kind = body.disposition
    _check_label(result, body)
    if kind in VERDICTS and not is_flagged(result):
        raise NotFlagged(
            f"disposition: result {result_id} was not flagged by its model ({_flag_of(result)}), so it "
            f"cannot be {kind.value}: confirmed_defect and false_reject judge a flagged item; use "
            f"{DispositionKind.NEEDS_REVIEW.value} to have it looked at (a missed defect is not recorded)"
        )
    current = result.disposition
    previous = current.disposition if current is not None else None
    if current is None:
        current = Disposition(
            result_id=result.id,
            line=result.line,
            gateway_id=result.gateway_id,
            model_name=result.model_name,
            model_version=result.model_version,
            task=result.task,
            label=result.label,
            captured_at=result.captured_at,
        )
        result.disposition = current
    current.disposition = kind.value
    current.true_label = body.true_label
    current.note = body.note
    current.actor = who.name
    current.at = utcnow()
    session.flush()
    details = {"line": result.line, "disposition": kind.value, "previous": previous, "note": body.note}
    if body.true_label is not None:  # who said which label, beside the model's
        details |= {"true_label": body.true_label, "model_label": result.label}
    audit(session, who, "disposition.set", str(result_id), **details)
    return current


def _check_label(result: Result, body: DispositionSet) -> None:
    labelled = body.disposition is DispositionKind.LABELLED
    if not labelled:
        if body.true_label is not None:
            raise BadLabel(f"disposition: true_label goes with {DispositionKind.LABELLED.value} only")
        return
    known = LABELLED_TASKS.get(result.task)
    if known is None:
        raise BadLabel(
            f"disposition: result {result.id} is a {result.task} result; {DispositionKind.LABELLED.value} "
            f"labels results of {', '.join(LABELLED_TASKS)} only"
        )
    if body.true_label not in known:
        raise BadLabel(
            f"disposition: {DispositionKind.LABELLED.value} needs true_label, one of {', '.join(known)} "
            f"(got {body.true_label!r})"
        )


def _flag_of(result: Result) -> str:
    if result.output.get("kind") == "parcel":
        return "parcel not damaged"
    if result.is_defect is None:
        return f"a {result.task} result has no defect flag"
    return "is_defect false"


def review_counts(
    session: Session, line: str, start: datetime, end: datetime, task: str | None = None
) -> ReviewCounts:
    """Dispositions of ``line``'s results (of ``task`` alone, if given) captured in ``[start, end)``,
    counted by the database."""
    query = (
        select(Disposition.disposition, func.count())
        .where(Disposition.line == line)
        .where(Disposition.captured_at >= start, Disposition.captured_at < end)
        .group_by(Disposition.disposition)
    )
    if task is not None:
        query = query.where(Disposition.task == task)
    counts = {str(kind): int(n) for kind, n in session.execute(query)}
    false_rejects = counts.get(DispositionKind.FALSE_REJECT.value, 0)
    reviewed = false_rejects + counts.get(DispositionKind.CONFIRMED_DEFECT.value, 0)
    return ReviewCounts(
        reviewed=reviewed,
        false_rejects=false_rejects,
        false_reject_rate=false_rejects / reviewed if reviewed else None,
        needs_review=counts.get(DispositionKind.NEEDS_REVIEW.value, 0),
    )
