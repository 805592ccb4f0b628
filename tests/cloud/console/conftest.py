"""Fixtures of the console tests: the console over a seeded database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.api import create_app
from cloud.config import CloudSettings
from protocol.topics import TopicSpace
from tests.support.console import Console, seed_console
from tests.support.releases import RecordingPublisher
from tests.support.testclient import TestClient


@pytest.fixture
def console(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Console]:
    """The API and console on a database seeded by :func:`seed_console`; users log in with ``login``."""
    settings = CloudSettings(db_url=db_url, artifact_dir=str(tmp_path / "artifacts"))
    seeded = seed_console(settings, topic_space, Ed25519PrivateKey.generate(), tmp_path / "release")
    with TestClient(create_app(settings, RecordingPublisher())) as client:
        yield Console(client, settings, topic_space, tmp_path, seeded)
