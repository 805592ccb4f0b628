"""Celery tasks: thin wrappers (serialization, retries) around service functions."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.rules import evaluate_all
from cloud.config import CloudSettings
from cloud.db.engine import make_engine, make_sessionmaker
from cloud.ota.desired import MqttDesiredPublisher
from cloud.ota.ticks import tick_all
from cloud.retention import purge_older_than
from cloud.thumbnails import trim_per_line

RETENTION_TASK = "cloud.retention"
ALERTS_TASK = "cloud.alerts.evaluate"
ROLLOUT_TICK_TASK = "cloud.rollouts.tick"


class _LazySessions:
    """One engine per worker process, made on first use (after Celery's prefork fork)."""

    def __init__(self, db_url: str) -> None:
        self._db_url = db_url
        self._lock = threading.Lock()
        self._sessions: sessionmaker[Session] | None = None

    def get(self) -> sessionmaker[Session]:
        with self._lock:
            if self._sessions is None:
                self._sessions = make_sessionmaker(make_engine(self._db_url))
            return self._sessions

    def dispose(self) -> None:
        """Close the pooled connections (at worker shutdown)."""
        with self._lock:
            if self._sessions is not None:
                bind = self._sessions.kw["bind"]
                bind.dispose()
                self._sessions = None


def register_tasks(app: Any, settings: CloudSettings) -> Callable[[], None]:
    """Register the cloud's tasks on ``app``; return a function that closes their DB pools."""
    sessions = _LazySessions(settings.db_url)

    @app.task(  # type: ignore[untyped-decorator]
        name=RETENTION_TASK,
        # Not shared: a shared task is added to every Celery app created later in the process.
        shared=False,
        autoretry_for=(OperationalError,),
        retry_backoff=True,
        max_retries=5,
    )
    def retention(days: int | None = None) -> dict[str, str | int]:
        """Delete data older than ``days`` (default: the configured retention)."""
        return purge_older_than(sessions.get(), days or settings.retention_days).as_dict()

    publisher = _LazyPublisher(settings)

    @app.task(  # type: ignore[untyped-decorator]
        name=ROLLOUT_TICK_TASK,
        shared=False,
        autoretry_for=(OperationalError,),
        retry_backoff=True,
        max_retries=3,
        # A tick that waited behind slower ones is stale: the next beat brings a fresh one.
        expires=60,
    )
    def rollout_tick() -> int:
        """Advance every running rollout one step."""
        return tick_all(sessions.get(), settings, publisher.get())

    @app.task(  # type: ignore[untyped-decorator]
        name=ALERTS_TASK,
        shared=False,
        autoretry_for=(OperationalError,),
        retry_backoff=True,
        max_retries=3,
        # Like the rollout tick: a late evaluation is superseded by the next beat.
        expires=60,
    )
    def evaluate_alerts() -> dict[str, int]:
        """Open and close alerts from every rule, and trim thumbnails to their per-line cap."""
        made = sessions.get()
        outcome = evaluate_all(made).as_dict()
        with made.begin() as session:
            outcome["thumbnails_trimmed"] = trim_per_line(session)
        return outcome

    def dispose() -> None:
        sessions.dispose()
        publisher.close()

    return dispose


class _LazyPublisher:
    """One MQTT desired-state publisher per worker process, made on first use (after the fork)."""

    def __init__(self, settings: CloudSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._publisher: MqttDesiredPublisher | None = None

    def get(self) -> MqttDesiredPublisher:
        with self._lock:
            if self._publisher is None:
                self._publisher = MqttDesiredPublisher(self._settings)
            return self._publisher

    def close(self) -> None:
        with self._lock:
            if self._publisher is not None:
                self._publisher.close()
                self._publisher = None
