"""A failing disk under the outbox: the agent holds the line and retries; no result is lost."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.outbox import EventDraft, Outbox
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


def test_a_commit_a_full_disk_refuses_takes_no_seq(tmp_path: Path) -> None:
    """The fault: the outbox's disk (a 2 MB tmpfs) is full, for real, when an append commits. The
    promise kept: the append fails as a whole, on disk and in memory; the next one, once there is
    room, takes the very next seq (a skipped one would be waited for by the cloud) and the counts
    agree with the file when it is opened again."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], check=True)  # noqa: S603, S607
    try:
        outbox = Outbox(disk / "outbox.db", 1 << 30)
        draft = EventDraft(kind="note", level="info", message="x" * 2000)
        assert outbox.append_events([draft]) == [1]
        filler = disk / "filler"
        with filler.open("wb") as fh, contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        with pytest.raises(sqlite3.OperationalError, match="full"):
            _append_until_refused(outbox, draft)
        depth = outbox.events.depth
        filler.unlink()
        [seq] = outbox.append_events([draft])
        assert seq == depth + 1, "a seq was skipped"
        outbox.close()
        reopened = Outbox(disk / "outbox.db", 1 << 30)
        assert (reopened.events.last_seq, reopened.events.depth) == (seq, seq)
        assert reopened.quick_check() == ["ok"]
        reopened.close()
    finally:
        # Lazy: a connection a failed assertion left open must not keep the mount (and the
        # pytest folder around it) busy for good.
        subprocess.run(["umount", "-l", str(disk)], check=False)  # noqa: S603, S607


def _append_until_refused(outbox: Outbox, draft: EventDraft) -> None:
    """Append until a commit needs a page the disk does not have (raises), or give up."""
    for _ in range(200):
        outbox.append_events([draft] * 20)
