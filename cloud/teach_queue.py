"""The Celery side of :class:`cloud.training.queue.TeachQueue`: the API sends the ``teach`` task to
the worker's broker (Redis, or the demo's filesystem queue), with the app the worker itself runs."""

from __future__ import annotations

import threading
from typing import Any

from cloud.config import CloudSettings
from cloud.training.queue import TEACH_TASK


class CeleryTeachQueue:
    """Sends ``cloud.training.teach`` with the run's id; the Celery app is made on first use."""

    def __init__(self, settings: CloudSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._app: Any = None

    def enqueue(self, run_id: int) -> None:
        """Send the task; raises what the broker connection raised."""
        with self._lock:
            if self._app is None:
                # Imported here: the Celery app registers every task, which the API needs only now.
                from cloud.celery_app import create_celery

                self._app = create_celery(self._settings)
            app = self._app
        app.send_task(TEACH_TASK, args=[run_id])

    def close(self) -> None:
        """Drop the broker connection pool, if one was made."""
        with self._lock:
            if self._app is not None:
                self._app.dispose_engines()
                self._app.close()
                self._app = None
