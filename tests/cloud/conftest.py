"""Fixtures of the cloud tests: settings per test, a running ingest worker, a test publisher, sessions on
a fresh database, a yard of gateways, the console over a seeded database with a release to roll out, and
the API in the production profile over a seeded database with a token per role (``plant``), and the
API for access-control tests with its login throttle on a test clock (``access``)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.ingest.worker import IngestWorker
from protocol.topics import TopicSpace
from tests.support.access import Access, access_api
from tests.support.console_live import Live, running_live
from tests.support.mqtt import Publisher, clear_session
from tests.support.plant import Plant, running_plant
from tests.support.yard import Yard, running_yard


@pytest.fixture(autouse=True)
def no_users_factoryctl_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """factoryctl called with no config in its environment falls back to ~/.config/factoryctl: a
    login on the machine (a person trying the demo) would hand these tests its token. A home of
    the test's own keeps them to what they set up."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture
def cloud_settings(db_url: str, mosquitto: tuple[str, int], topic_space: TopicSpace) -> CloudSettings:
    """Settings pointing at this test's database, the real broker and this test's topic root."""
    host, port = mosquitto
    return CloudSettings(
        db_url=db_url,
        broker_url=f"mqtt://{host}:{port}",
        topic_root=topic_space.root,
        share_group=None,
        ingest_client_id=f"test-ingest-{uuid.uuid4().hex[:10]}",
        ingest_max_wait_ms=50,
        db_wait_s=5,
    )


@pytest.fixture
def start_worker(
    cloud_settings: CloudSettings, mosquitto: tuple[str, int]
) -> Iterator[Callable[..., IngestWorker]]:
    """Start ingest workers (stopped and their broker sessions cleared at teardown)."""
    workers: list[IngestWorker] = []

    def start(**overrides: object) -> IngestWorker:
        settings = cloud_settings.model_copy(update=overrides)
        worker = IngestWorker(settings).start()
        workers.append(worker)
        assert worker.wait_connected(10), "ingest worker did not connect to Mosquitto"
        return worker

    yield start
    for worker in workers:
        worker.stop()
    for client_id in {w.client_id for w in workers}:
        clear_session(mosquitto, client_id)


@pytest.fixture
def yard(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Yard]:
    """The API on a fresh database (defect-cnn 1.0 and 1.1 registered) and gateways that speak through ingest."""
    with running_yard(db_url, tmp_path, topic_space) as running:
        yield running


@pytest.fixture
def live(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Live]:
    """The API and console on a seeded database, plus a version 1.1 to roll out."""
    with running_live(db_url, tmp_path, topic_space) as running:
        yield running


@pytest.fixture
def plant(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Plant]:
    """The API in the production profile over a seeded database, with a token per role."""
    with running_plant(db_url, topic_space, tmp_path) as running:
        yield running


@pytest.fixture
def access(db_url: str, tmp_path: Path) -> Iterator[Access]:
    """The API (demo profile) with a token per role; its login throttle runs on ``access.clock``."""
    with access_api(db_url, tmp_path) as running:
        yield running


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh, migrated database."""
    migrate(db_url)
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def publisher(mosquitto: tuple[str, int], topic_space: TopicSpace) -> Iterator[Publisher]:
    """A gateway stand-in on the real broker."""
    pub = Publisher(mosquitto, topic_space)
    yield pub
    pub.close()


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves threads running (workers must stop what they start)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"
