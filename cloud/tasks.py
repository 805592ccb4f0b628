"""Celery tasks: thin wrappers (serialization, retries) around service functions."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.rules import evaluate_all
from cloud.config import CloudSettings
from cloud.datasets.orders import MqttOrdersPublisher, republish
from cloud.db.engine import make_engine, make_sessionmaker
from cloud.ota.desired import MqttDesiredPublisher
from cloud.ota.ticks import tick_all
from cloud.retention import purge_older_than
from cloud.thumbnails import trim_per_line
from cloud.training.queue import TEACH_TASK
from cloud.training.teach import Stores, teach

RETENTION_TASK = "cloud.retention"
ALERTS_TASK = "cloud.alerts.evaluate"
ROLLOUT_TICK_TASK = "cloud.rollouts.tick"
CAPTURE_ORDERS_TASK = "cloud.captures.republish"

# Not shared: a shared task is added to every Celery app created later in the process. A task
# that lost its database retries with backoff.
_TASK_OPTIONS: dict[str, Any] = {"shared": False, "autoretry_for": (OperationalError,), "retry_backoff": True}
# A beat task that waited behind slower ones is stale: the next beat brings a fresh one.
_BEAT_TASK_OPTIONS: dict[str, Any] = {**_TASK_OPTIONS, "max_retries": 3, "expires": 60}

T = TypeVar("T")


class _PerProcess(Generic[T]):
    """One ``make()`` per worker process, made on first use (after Celery's prefork fork)."""

    def __init__(self, make: Callable[[], T], close: Callable[[T], None]) -> None:
        self._make = make
        self._close = close
        self._lock = threading.Lock()
        self._made: T | None = None

    def get(self) -> T:
        with self._lock:
            if self._made is None:
                self._made = self._make()
            return self._made

    def close(self) -> None:
        """Close what was made, if anything (at worker shutdown)."""
        with self._lock:
            if self._made is not None:
                self._close(self._made)
                self._made = None


def _dispose_pool(sessions: sessionmaker[Session]) -> None:
    sessions.kw["bind"].dispose()


def register_tasks(app: Any, settings: CloudSettings) -> Callable[[], None]:
    """Register the cloud's tasks on ``app``; return a function that closes their DB pools."""
    sessions = _PerProcess(lambda: make_sessionmaker(make_engine(settings.db_url)), _dispose_pool)
    publisher = _PerProcess(lambda: MqttDesiredPublisher(settings), MqttDesiredPublisher.close)
    orders_publisher = _PerProcess(lambda: MqttOrdersPublisher(settings), MqttOrdersPublisher.close)

    @app.task(name=RETENTION_TASK, max_retries=5, **_TASK_OPTIONS)  # type: ignore[untyped-decorator]
    def retention(days: int | None = None) -> dict[str, str | int]:
        """Delete data older than ``days`` (default: the configured retention)."""
        return purge_older_than(sessions.get(), days or settings.retention_days).as_dict()

    @app.task(name=ROLLOUT_TICK_TASK, **_BEAT_TASK_OPTIONS)  # type: ignore[untyped-decorator]
    def rollout_tick() -> int:
        """Advance every running rollout one step."""
        return tick_all(sessions.get(), settings, publisher.get())

    @app.task(name=ALERTS_TASK, **_BEAT_TASK_OPTIONS)  # type: ignore[untyped-decorator]
    def evaluate_alerts() -> dict[str, int]:
        """Open and close alerts from every rule, and trim thumbnails to their per-line cap."""
        made = sessions.get()
        outcome = evaluate_all(made).as_dict()
        with made.begin() as session:
            outcome["thumbnails_trimmed"] = trim_per_line(session)
        return outcome

    @app.task(name=CAPTURE_ORDERS_TASK, **_BEAT_TASK_OPTIONS)  # type: ignore[untyped-decorator]
    def republish_capture_orders() -> int:
        """Publish every gateway's open capture orders again (after a failed publish, among others)."""
        return republish(sessions.get(), orders_publisher.get())

    stores = _PerProcess(lambda: Stores.of(settings), lambda _stores: None)

    # teach() carries out a run only while it is queued, so a retry (the database was away) or a
    # re-delivered task (acks_late after a worker crash) never fits the same run twice.
    @app.task(name=TEACH_TASK, max_retries=3, **_TASK_OPTIONS)  # type: ignore[untyped-decorator]
    def teach_run(run_id: int) -> str:
        """Fit a queued training run's dataset into a candidate model; the run's status after."""
        return teach(sessions.get(), settings, stores.get(), run_id)

    def dispose() -> None:
        sessions.close()
        publisher.close()
        orders_publisher.close()

    return dispose
