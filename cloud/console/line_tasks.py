"""Which task a line's figures speak of, and a line's stats with each task's figures kept apart.

A line may run several tasks at once: the demo's first line inspects parts with a camera while its
operators write maintenance notes. Throughput, result counts and rates are the line's production
task alone; notes are counted apart (how many, how many of high urgency), never into those.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from cloud.console.api import ApiClient

NOTES = "notes"
IDLE_TASK = "defect"  # a line with nothing but notes in range shows as an inspection line with no results


def main_task(results_by_task: Mapping[str, int]) -> str:
    """The line's production task: its most frequent task other than notes (the API lists the
    tasks most frequent first)."""
    return next((task for task in results_by_task if task != NOTES), IDLE_TASK)


def stats_path(line: str) -> str:
    """The API path of a line's statistics."""
    return f"/lines/{quote(line, safe='')}/stats"


async def split_stats(api: ApiClient, line: str, **params: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the production task's stats, every task's stats) of ``line`` over the same buckets.

    The first names its task (``task``); every task's stats carry the notes figures. A range
    holding one task alone takes one call.
    """
    every: dict[str, Any] = await api.get(stats_path(line), **params)
    task = main_task(every["results_by_task"])
    if set(every["results_by_task"]) <= {task}:
        return {**every, "task": task}, every
    main: dict[str, Any] = await api.get(stats_path(line), task=task, **params)
    return main, every
