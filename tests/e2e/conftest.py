"""The e2e tests' one set-up: a :class:`Stack` bound to the test's folder and topic root."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.topics import TopicSpace
from tests.support.e2e import Stack


@pytest.fixture
def stack(tmp_path: Path, topic_space: TopicSpace) -> Stack:
    """Frames, cloud settings, API, ingest and agents of this test (see tests/support/e2e.py)."""
    return Stack(tmp_path, topic_space)
