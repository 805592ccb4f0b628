"""Fixtures of the API tests: the API over a database seeded through the ingest service."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud.api import create_app
from cloud.config import CloudSettings
from protocol.topics import TopicSpace
from tests.support.database import seed, seed_notes_and_events
from tests.support.testclient import TestClient


@pytest.fixture
def notes_client(db_url: str, topic_space: TopicSpace) -> Iterator[TestClient]:
    """The API over :func:`seed` plus line-1's maintenance notes and three gateway events."""
    seed(db_url, topic_space)
    seed_notes_and_events(db_url, topic_space)
    with TestClient(create_app(CloudSettings(db_url=db_url, topic_root=topic_space.root))) as client:
        yield client
