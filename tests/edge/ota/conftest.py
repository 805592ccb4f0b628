"""Fixtures of the gateway OTA tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.topics import TopicSpace
from tests.support.ota_kit import Rig


@pytest.fixture
def rig(tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace) -> Iterator[Rig]:
    """A gateway on model 1.0.0 with OTA on, its artifact server, keys and cloud stand-in."""
    r = Rig(tmp_path, mosquitto, topic_space)
    try:
        yield r
    finally:
        r.close()
