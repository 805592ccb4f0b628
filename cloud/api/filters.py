"""Filters several lists share: a result's task, checked against the protocol's, and a note's urgency."""

from __future__ import annotations

from fastapi import HTTPException
from sqlalchemy import ColumnElement

from cloud.db.models import Result
from protocol.inference import HIGH_URGENCY
from protocol.messages import RESULT_TASKS

NOTES = "notes"
TASK_HELP = f"Only results of this task: {', '.join(RESULT_TASKS)}"
TASK_SCHEMA = {"enum": list(RESULT_TASKS)}


def check_task(task: str | None) -> str | None:
    """``task`` if it is one a result can be of; a 422 names it and the known ones otherwise."""
    if task is not None and task not in RESULT_TASKS:
        raise HTTPException(
            422, detail=f"task {task!r} is not a result task; known tasks: {', '.join(RESULT_TASKS)}"
        )
    return task


def note_urgency() -> ColumnElement[str]:
    """A note's urgency, read from its stored output (other results have none)."""
    urgency: ColumnElement[str] = Result.output["urgency"].as_string()
    return urgency


def is_urgent_note() -> ColumnElement[bool]:
    """A note of the highest urgency, which the console counts apart and highlights."""
    urgent: ColumnElement[bool] = (Result.task == NOTES) & (note_urgency() == HIGH_URGENCY)
    return urgent
