"""Labelled notes as training data: each note an operator gave a category, as one JSON line.

A line holds what ``factory-models train notes --extra FILE`` learns from (``text``, ``category``:
the operator's) and what says where it came from (the model's own category and urgency, who
labelled it and when). Urgency is the model's, not an operator's, so it is named ``model_urgency``
and no trainer reads it as a label. A note stored without its text (an agent older than notes
carrying it) cannot teach anything and is left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import Disposition, Result
from cloud.dispositions.schemas import DispositionKind

NOTES_TASK = "notes"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def labelled_notes(
    session: Session, line: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> Iterator[dict[str, object]]:
    """Labelled notes (of ``line``; labelled in ``[since, until)``), oldest label first."""
    query = (
        select(Disposition, Result.output)
        .join(Result, Result.id == Disposition.result_id)
        .where(Disposition.disposition == DispositionKind.LABELLED.value, Disposition.task == NOTES_TASK)
        .order_by(Disposition.at, Disposition.result_id)
    )
    if line is not None:
        query = query.where(Disposition.line == line)
    if since is not None:
        query = query.where(Disposition.at >= since)
    if until is not None:
        query = query.where(Disposition.at < until)
    for disposition, output in session.execute(query):
        text = output.get("text")
        if not isinstance(text, str) or disposition.true_label is None:
            continue
        yield {
            "text": text,
            "category": disposition.true_label,
            "model_category": output.get("category", disposition.label),
            "model_urgency": output.get("urgency"),
            "result_id": str(disposition.result_id),
            "line": disposition.line,
            "gateway_id": disposition.gateway_id,
            "model": f"{disposition.model_name} {disposition.model_version}",
            "captured_at": _iso(disposition.captured_at),
            "labelled_by": disposition.actor,
            "labelled_at": _iso(disposition.at),
        }


def jsonl(rows: Iterator[dict[str, object]]) -> str:
    """One JSON object a line, UTF-8 as written (a note's umlauts stay readable)."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
