"""The Celery application, built from settings by a factory.

``create_celery(settings)`` is what ``factory-cloud worker`` and tests use. For the stock
``celery -A cloud.celery_app worker`` command, the module attribute ``app`` is built lazily from
the ``FACTORY_*`` environment on first access (never at import).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from celery import Celery

from cloud.config import CloudSettings
from cloud.tasks import RETENTION_TASK, register_tasks

RETENTION_EVERY_S = 24 * 3600.0


def create_celery(settings: CloudSettings) -> Any:
    """A Celery app for ``settings`` with the cloud's tasks and schedule registered."""
    app = Celery("factory_cloud", broker=settings.celery_broker_url, backend=settings.celery_result_backend)
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
        beat_schedule={"retention-daily": {"task": RETENTION_TASK, "schedule": RETENTION_EVERY_S}},
    )
    # Called by whoever runs the worker once it has stopped (factory-cloud worker, tests).
    app.dispose_engines = register_tasks(app, settings)
    return app


@cache
def _app_from_environment() -> Any:
    from cloud.cli import settings_from_environment  # the CLI layer owns environment parsing

    return create_celery(settings_from_environment(os.environ))


def __getattr__(name: str) -> Any:
    if name == "app":
        return _app_from_environment()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
