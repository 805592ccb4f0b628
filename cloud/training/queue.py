"""How the API hands a queued run to the Celery worker: a narrow seam, so tests and the demo can
put something else behind it (the Celery implementation is :mod:`cloud.teach_queue`)."""

from __future__ import annotations

from typing import Protocol

TEACH_TASK = "cloud.training.teach"


class TeachQueue(Protocol):
    """Something that gets a queued training run carried out, eventually."""

    def enqueue(self, run_id: int) -> None:
        """Hand run ``run_id`` over; raise when it could not be."""
