"""The rollout tick through a real Celery worker: on Redis (CI, compose) and on the embedded
demo's filesystem transport (no Redis)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from celery.contrib.testing.worker import start_worker as start_celery_worker
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, func, select

from bench.ota_fleet import VirtualFleet, wait_for
from cloud.celery_app import create_celery
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.db.models import GatewayReported
from cloud.ingest.worker import IngestWorker
from cloud.ota import rollouts as engine
from cloud.ota.schemas import RolloutCreate, Target
from cloud.tasks import ROLLOUT_TICK_TASK
from protocol.topics import TopicSpace
from tests.conftest import require_tcp
from tests.support.releases import make_release, register

REDIS = "redis://127.0.0.1:6379/5"
GATEWAYS = ["gw-a", "gw-b", "gw-c"]


def _reported(db: Engine) -> int:
    with make_sessionmaker(db)() as session:
        return session.scalar(select(func.count()).select_from(GatewayReported)) or 0


def _tick_moves_first_wave(
    settings: CloudSettings,
    mosquitto: tuple[str, int],
    topic_space: TopicSpace,
    tmp_path: Path,
    start_ingest: Callable[..., IngestWorker],
) -> None:
    migrate(settings.db_url)
    key = Ed25519PrivateKey.generate()
    old, new = make_release(tmp_path / "old", "1.0", key), make_release(tmp_path / "new", "2.0", key)
    register(settings, old)
    register(settings, new)
    start_ingest()
    db = make_engine(settings.db_url)
    fleet = VirtualFleet(mosquitto, topic_space, GATEWAYS, old.ref, connections=1).start()
    app = create_celery(settings)
    # A queue of this test's own, so parallel runs on a shared broker never take each other's tasks.
    app.conf.task_default_queue = f"test-{uuid.uuid4().hex[:8]}"
    try:
        # A rollout names gateways that connected and picks the slot they run the model in.
        wait_for(lambda: _reported(db) == len(GATEWAYS), 15, "ingest to store the reported states")
        with make_sessionmaker(db).begin() as session:
            req = RolloutCreate(
                model_name="defect-cnn", version="2.0", target=Target(gateways=GATEWAYS), waves="1,100%"
            )
            engine.create_rollout(session, req, "test")
        with start_celery_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            app.send_task(ROLLOUT_TICK_TASK)
            wait_for(lambda: fleet.count_on("2.0") == 1, 20, "the worker's tick to start wave 1")
        assert fleet.count_on("1.0") == 2  # one tick, one wave: the rest wait for the next ticks
    finally:
        app.dispose_engines()
        fleet.stop()
        db.dispose()


def test_rollout_tick_runs_on_a_real_worker_on_redis(
    cloud_settings: CloudSettings,
    mosquitto: tuple[str, int],
    topic_space: TopicSpace,
    tmp_path: Path,
    start_worker: Callable[..., IngestWorker],  # the ingest worker fixture
) -> None:
    require_tcp("127.0.0.1", 6379, "Redis")
    settings = cloud_settings.model_copy(
        update={"celery_broker_url": REDIS, "artifact_dir": str(tmp_path / "a")}
    )
    _tick_moves_first_wave(settings, mosquitto, topic_space, tmp_path, start_worker)


def test_rollout_tick_runs_on_a_real_worker_on_the_embedded_filesystem_transport(
    cloud_settings: CloudSettings,
    mosquitto: tuple[str, int],
    topic_space: TopicSpace,
    tmp_path: Path,
    start_worker: Callable[..., IngestWorker],
) -> None:
    settings = cloud_settings.model_copy(
        update={
            "celery_broker_url": "filesystem://",
            "celery_queue_dir": str(tmp_path / "queue"),
            "artifact_dir": str(tmp_path / "a"),
        }
    )
    _tick_moves_first_wave(settings, mosquitto, topic_space, tmp_path, start_worker)
