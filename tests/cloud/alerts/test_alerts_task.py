"""The alerts beat task on a real Celery worker (Redis broker): it opens an alert from seeded data."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from celery.contrib.testing.worker import start_worker as start_celery_worker
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.schemas import AlertRuleCreate
from cloud.alerts.service import create_rule
from cloud.auth.service import Principal, Role
from cloud.celery_app import ALERTS_EVERY_S, create_celery
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.db.models import Alert
from cloud.ingest.service import ingest_messages
from cloud.tasks import ALERTS_TASK
from protocol.topics import Channel, TopicSpace
from tests.conftest import require_tcp
from tests.support.messages import backlog_telemetry, inbound, state
from tests.support.waiting import wait_for

REDIS = "redis://127.0.0.1:6379/5"


def _alerts(sessions: sessionmaker[Session]) -> list[Alert]:
    with sessions() as session:
        return list(session.scalars(select(Alert)))


def test_alerts_task_runs_on_a_real_worker_and_is_on_the_beat_schedule(
    cloud_settings: CloudSettings, topic_space: TopicSpace
) -> None:
    require_tcp("127.0.0.1", 6379, "Redis")
    # No result backend (Redis's one warns of a deprecated call): the effect is read from the DB.
    settings = cloud_settings.model_copy(update={"celery_broker_url": REDIS})
    migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    sessions = make_sessionmaker(engine)
    ingest_messages(
        sessions,
        [
            inbound(topic_space, "gw-a", Channel.STATE, state("gw-a", True, 1)),
            inbound(
                topic_space, "gw-a", Channel.TELEMETRY, backlog_telemetry("gw-a", 250, datetime.now(UTC))
            ),
        ],
        topic_space,
    )
    with sessions.begin() as session:
        body = AlertRuleCreate(line="line-1", kind="outbox_backlog", threshold=100)
        create_rule(session, body, Principal("test", Role.admin))
    app = create_celery(settings)
    app.conf.task_default_queue = f"test-{uuid.uuid4().hex[:8]}"  # never share a queue with other runs
    schedule = app.conf.beat_schedule["alerts"]
    assert (schedule["task"], schedule["schedule"]) == (ALERTS_TASK, ALERTS_EVERY_S)
    try:
        with start_celery_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            app.send_task(ALERTS_TASK)
            wait_for(lambda: bool(_alerts(sessions)), 20, "the worker's evaluation to open an alert")
        [alert] = _alerts(sessions)
        assert (alert.subject, alert.value) == ("gw-a", 250.0)
    finally:
        app.dispose_engines()
        engine.dispose()
