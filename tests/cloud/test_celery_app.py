"""The Celery app: its tasks and beat schedule, and the retention task through a real worker and a real
Redis broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from celery.contrib.testing.worker import start_worker

from cloud.celery_app import create_celery
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.db.models import Result
from cloud.ingest.service import ingest_messages
from cloud.tasks import RETENTION_TASK
from protocol.topics import Channel, TopicSpace
from tests.conftest import require_tcp
from tests.support.messages import batch, inbound, item, new_stream
from tests.support.waiting import wait_for

REDIS = "redis://127.0.0.1:6379/5"


def test_retention_task_runs_on_a_real_worker(db_url: str, topic_space: TopicSpace) -> None:
    require_tcp("127.0.0.1", 6379, "Redis")
    migrate(db_url)
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    ingest_messages(
        make_sessionmaker(engine),
        [
            inbound(
                topic_space,
                "gw",
                Channel.RESULTS,
                batch("gw", new_stream(), [item(1, at=now - timedelta(days=50)), item(2, at=now)]),
            )
        ],
        topic_space,
    )
    # No result backend: celery's Redis backend calls a redis-py method deprecated in redis 8.
    app = create_celery(CloudSettings(db_url=db_url, celery_broker_url=REDIS, retention_days=30))
    # A queue of this test's own, so parallel runs on the shared Redis never take each other's tasks.
    app.conf.task_default_queue = f"test-{uuid.uuid4().hex[:8]}"

    def remaining() -> list[int]:
        with engine.connect() as conn:
            return list(conn.scalars(sa.select(Result.seq)))

    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            app.send_task(RETENTION_TASK)
            wait_for(lambda: remaining() == [2], timeout_s=15, what="the worker to delete the old result")
    finally:
        app.dispose_engines()
        engine.dispose()


def test_celery_app_registers_retention_task_with_json_only() -> None:
    app = create_celery(CloudSettings(celery_broker_url="memory://"))
    assert RETENTION_TASK in app.tasks
    assert app.conf.accept_content == ["json"]
    assert "retention-daily" in app.conf.beat_schedule
