"""A failing disk under the outbox: the agent holds the line and retries; no result is lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.outbox import Outbox
from protocol.topics import TopicSpace
from tests.support.agent import agent_config, build_model, write_frames
from tests.support.fake_cloud import FakeCloud
from tests.support.waiting import wait_for

FRAMES = 12


@pytest.mark.allow_logged_exceptions
def test_outbox_write_failure_is_retried_and_loses_no_result(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = build_model(tmp_path / "model")
    names = write_frames(tmp_path / "frames", [10 + i for i in range(FRAMES)])
    failures = {"left": 3}
    real_append = Outbox.append

    def flaky_append(self: Outbox, drafts: Any) -> list[int]:
        # The fault: the disk refuses the first writes (full, or I/O error), then recovers.
        if failures["left"] > 0:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return real_append(self, drafts)

    monkeypatch.setattr(Outbox, "append", flaky_append)
    cloud = FakeCloud(mosquitto, topic_space, "gw-test")
    agent = Agent(agent_config(tmp_path, mosquitto, topic_space, manifest, tmp_path / "frames"))
    try:
        agent.start()
        wait_for(lambda: cloud.frames() >= set(names), 30, "every frame's result despite the failing disk")
    finally:
        agent.stop()
        cloud.close()
    assert failures["left"] == 0, "the fault must have happened for the test to mean anything"
    assert sum(w.failures for w in agent.workers) == 3
