"""A damaged outbox file: the agent starts anyway, moves the file aside, says so (event and
metric), and the line's results keep reaching the cloud."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edge_agent.agent import Agent
from edge_agent.outbox import EventDraft, Outbox
from edge_agent.outbox_recovery import open_outbox
from protocol.topics import TopicSpace
from tests.support.agent import agent_config, build_model, write_frames
from tests.support.fake_cloud import FakeCloud
from tests.support.waiting import wait_for

FRAMES = 10
PAGE = 4096


def _filled_outbox(path: Path, items: int = 400) -> str:
    """An outbox with ``items`` events queued and checkpointed into the main file; its stream id."""
    outbox = Outbox(path, 1 << 30)
    outbox.append_events([EventDraft(kind="note", level="info", message="x" * 200) for _ in range(items)])
    stream = outbox.events.stream
    outbox.close()
    return stream


def _garbage_page(path: Path, page: int) -> None:
    with path.open("r+b") as fh:
        fh.seek(page * PAGE)
        fh.write(os.urandom(PAGE))


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(os.urandom(3 * PAGE)), id="garbage file"),
        pytest.param(lambda p: os.truncate(p, p.stat().st_size // 3), id="truncated"),
        pytest.param(lambda p: _garbage_page(p, 2), id="garbage page"),
    ],
)
def test_a_damaged_file_is_moved_aside_and_a_fresh_outbox_opens(tmp_path: Path, damage: object) -> None:
    path = tmp_path / "outbox.db"
    old_stream = _filled_outbox(path)
    damage(path)  # type: ignore[operator]
    outbox, damaged = open_outbox(path, 1 << 30)
    try:
        assert damaged is not None, "the damage went unnoticed"
        assert damaged.moved_to.exists()
        assert damaged.moved_to.parent == tmp_path
        assert outbox.quick_check() == ["ok"]
        assert outbox.events.stream != old_stream, "the fresh outbox must number its items apart"
        outbox.append_events([EventDraft(kind="note", level="info", message="after")])
        assert outbox.events.depth == 1
    finally:
        outbox.close()


def test_a_sound_file_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    stream = _filled_outbox(path, items=5)
    outbox, damaged = open_outbox(path, 1 << 30)
    try:
        assert damaged is None
        assert (outbox.events.stream, outbox.events.depth) == (stream, 5)
    finally:
        outbox.close()


def test_the_agent_starts_on_a_damaged_outbox_and_says_so(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    """The fault: the outbox file is garbage when the agent starts (a disk fault). The promise kept:
    the agent serves the line, every frame's result reaches the cloud, and an error event and the
    outbox_damaged metric say what happened and where the file went."""
    manifest = build_model(tmp_path / "model")
    names = write_frames(tmp_path / "frames", [10 + i for i in range(FRAMES)])
    config = agent_config(tmp_path, mosquitto, topic_space, manifest, tmp_path / "frames")
    config.state_dir.mkdir(parents=True)
    (config.state_dir / "outbox.db").write_bytes(os.urandom(8 * PAGE))
    cloud = FakeCloud(mosquitto, topic_space, "gw-test")
    agent = Agent(config)
    try:
        agent.start()
        wait_for(lambda: cloud.frames() >= set(names), 30, "every frame's result")
        events = lambda: [json.loads(e) for e in list(cloud.events)]  # noqa: E731
        wait_for(lambda: any(e["kind"] == "outbox_damaged" for e in events()), 15, "the outbox_damaged event")
        [event] = [e for e in events() if e["kind"] == "outbox_damaged"]
        assert event["level"] == "error"
        assert Path(event["details"]["moved_to"]).exists()
        assert "moved to" in event["message"]
        assert agent.metrics.registry.get_sample_value("outbox_damaged_total") == 1
    finally:
        agent.stop()
        cloud.close()
