"""The Celery application, built from settings by a factory.

``create_celery(settings)`` is what ``factory-cloud worker`` and tests use. For the stock
``celery -A cloud.celery_app worker`` command, the module attribute ``app`` is built lazily from
the ``FACTORY_*`` environment on first access (never at import).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from celery import Celery

from cloud.config import CloudSettings, settings_from_environment
from cloud.tasks import ALERTS_TASK, CAPTURE_ORDERS_TASK, RETENTION_TASK, ROLLOUT_TICK_TASK, register_tasks

RETENTION_EVERY_S = 24 * 3600.0
# Alert rules work in seconds to minutes; evaluating more often only costs queries.
ALERTS_EVERY_S = 30.0
# Capture orders are retained on the broker; re-sending them is for a publish that failed.
CAPTURE_ORDERS_EVERY_S = 60.0


def create_celery(settings: CloudSettings) -> Any:
    """A Celery app for ``settings`` with the cloud's tasks and schedule registered."""
    broker_url = settings.celery_broker_url
    if broker_url.startswith("filesystem://"):
        from cloud.celery_fs import register

        broker_url = register() + broker_url.removeprefix("filesystem")
    app = Celery("factory_cloud", broker=broker_url, backend=settings.celery_result_backend)
    app.conf.update(
        # JSON only: no pickle on any wire.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        enable_utc=True,
        timezone="UTC",
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "retention-daily": {"task": RETENTION_TASK, "schedule": RETENTION_EVERY_S},
            "rollouts": {"task": ROLLOUT_TICK_TASK, "schedule": settings.rollout_tick_s},
            "alerts": {"task": ALERTS_TASK, "schedule": ALERTS_EVERY_S},
            "capture-orders": {"task": CAPTURE_ORDERS_TASK, "schedule": CAPTURE_ORDERS_EVERY_S},
        },
    )
    if settings.celery_broker_url.startswith("filesystem://"):
        # kombu's filesystem transport (made atomic by cloud.celery_fs): one folder the producers
        # and the worker share. Chosen over the SQLAlchemy transport, which relies on a loader
        # strategy SQLAlchemy 2.1 deprecates.
        folder = Path(settings.celery_queue_dir)
        (folder / "processed").mkdir(parents=True, exist_ok=True)
        (folder / "control").mkdir(parents=True, exist_ok=True)
        # Beat's schedule file lives with the queue, not in whatever folder the worker started in.
        app.conf.beat_schedule_filename = str(folder / "celerybeat-schedule")
        app.conf.broker_transport_options = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "processed_folder": str(folder / "processed"),
            # Broadcast (control) messages too, or kombu writes them to ./control of the cwd.
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.5,
        }
    # Called by whoever runs the worker once it has stopped (factory-cloud worker, tests).
    app.dispose_engines = register_tasks(app, settings)
    return app


@cache
def _app_from_environment() -> Any:
    return create_celery(settings_from_environment(os.environ))


def __getattr__(name: str) -> Any:
    if name == "app":
        return _app_from_environment()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
