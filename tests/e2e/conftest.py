"""The e2e tests' one set-up: a :class:`Stack` bound to the test's folder and topic root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.topics import TopicSpace
from tests.conftest import require_tcp
from tests.support.drift_teach import TeachCloud, backend_named, teach_cloud
from tests.support.e2e import Stack


@pytest.fixture
def stack(tmp_path: Path, topic_space: TopicSpace) -> Stack:
    """Frames, cloud settings, API, ingest and agents of this test (see tests/support/e2e.py)."""
    return Stack(tmp_path, topic_space)


@pytest.fixture(params=["production", "embedded"])
def teach_cloud_on(request: pytest.FixtureRequest, stack: Stack) -> Iterator[TeachCloud]:
    """The cloud with a Celery worker teaching, on Mosquitto + PostgreSQL + Redis (production) or
    on the demo's embedded broker + SQLite + filesystem queue (embedded); see tests/support/drift_teach.py."""
    production = request.param == "production"
    mosquitto = request.getfixturevalue("mosquitto") if production else None
    pg_url = request.getfixturevalue("pg_url") if production else None
    if production:
        require_tcp("127.0.0.1", 6379, "Redis")
    with (
        backend_named(request.param, stack.folder, pg_url, mosquitto) as backend,
        teach_cloud(stack, backend, mosquitto) as cloud,
    ):
        yield cloud
