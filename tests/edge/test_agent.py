"""The agent end to end against the real Mosquitto, with a small in-test cloud collecting and acking."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
import yaml

from edge_agent.agent import Agent
from protocol.messages import DefectOutput
from protocol.topics import TopicSpace
from tests.support.agent import agent_config, build_model, write_frames
from tests.support.fake_cloud import FakeCloud
from tests.support.proxy import CuttableProxy
from tests.support.waiting import wait_for

BRIGHT, DARK = 240, 10


def _setup(tmp_path: Path, n: int = 10) -> tuple[Path, Path, list[str]]:
    manifest = build_model(tmp_path / "model")
    names = write_frames(tmp_path / "frames", [BRIGHT if i % 3 == 0 else DARK for i in range(n)])
    return manifest, tmp_path / "frames", names


def _get(port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return resp.status, resp.read()


def test_every_frame_arrives_birth_is_retained_and_acks_empty_the_outbox(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    manifest, frames, names = _setup(tmp_path)
    cloud = FakeCloud(mosquitto, topic_space, "gw-test", ack=True)
    agent = Agent(agent_config(tmp_path, mosquitto, topic_space, manifest, frames))
    try:
        agent.start()
        wait_for(lambda: cloud.frames() == set(names), 15, "every frame's result")
        wait_for(lambda: agent.outbox.stats() == (0, 0), 10, "the outbox to empty after acks")
        items = {item.frame: item for item in cloud.items()}
        assert sorted(item.seq for item in items.values()) == list(range(1, len(names) + 1))
        for i, name in enumerate(names):
            out = items[name].output
            assert isinstance(out, DefectOutput)
            assert out.is_defect == (i % 3 == 0), name
            assert items[name].model.sha256 == agent.runners[0].manifest.sha256
            assert (items[name].line, items[name].station, items[name].source) == ("line-1", "main", "replay")
        assert not any(item.replayed for item in cloud.items())

        # A subscriber arriving now still gets the retained birth.
        late = FakeCloud(mosquitto, topic_space, "gw-test", ack=False)
        try:
            wait_for(lambda: bool(late.states), 5, "the retained birth")
            birth = late.states[-1]
            assert birth.online
            assert birth.session == 1
            assert [(m.slot, m.name, m.task) for m in birth.models] == [("defect", "tiny-defect", "defect")]
        finally:
            late._client.disconnect()
            late._client.loop_stop()

        status, body = _get(agent.http_port, "/healthz")
        health = json.loads(body)
        assert status == 200
        assert health["status"] == "ok"
        assert health["mqtt_connected"] is True
        assert health["models_loaded"] == 1
        assert health["outbox_depth"] == 0
        _, metrics = _get(agent.http_port, "/metrics")
        text = metrics.decode()
        assert f'frames_in_total{{source="replay"}} {float(len(names))}' in text
        assert f'inferences_total{{slot="defect"}} {float(len(names))}' in text
        assert "mqtt_connected 1.0" in text
        assert "outbox_depth 0.0" in text
        assert "inference_latency_seconds_bucket" in text
        assert "publish_errors_total 0.0" in text
        wait_for(lambda: cloud.telemetry >= 1, 5, "a telemetry message")
    finally:
        agent.stop()
    wait_for(lambda: any(not s.online for s in cloud.states), 5, "the clean death state")
    assert cloud.states[-1].online is False
    assert cloud.states[-1].session == 1
    cloud.close()


def test_without_acks_nothing_is_deleted_and_items_are_resent_flagged_replayed(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    manifest, frames, names = _setup(tmp_path, n=5)
    cloud = FakeCloud(mosquitto, topic_space, "gw-test", ack=False)
    agent = Agent(agent_config(tmp_path, mosquitto, topic_space, manifest, frames))
    try:
        agent.start()
        wait_for(lambda: cloud.frames() == set(names), 15, "every frame's result")
        assert not any(item.replayed for item in cloud.items())
        wait_for(lambda: any(item.replayed for item in cloud.items()), 10, "a re-send after resend_after_s")
        replayed = [item for item in cloud.items() if item.replayed]
        assert {item.seq for item in replayed} >= {1}
        first = {item.seq: item.id for item in cloud.items() if not item.replayed}
        assert all(first[item.seq] == item.id for item in replayed)  # same ids: ingest deduplicates
        assert agent.outbox.stats()[0] == len(names)
        assert agent.outbox.acked_seq == 0
    finally:
        agent.stop()
        cloud.close()


def test_agent_restart_resends_unacked_results(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    """Fault: the agent process is SIGKILLed before any ack; a restart on the same state_dir loses nothing."""
    manifest, frames, names = _setup(tmp_path, n=8)
    config = agent_config(tmp_path, mosquitto, topic_space, manifest, frames)
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(yaml.safe_dump(json.loads(config.model_dump_json())))
    mute = FakeCloud(mosquitto, topic_space, "gw-test", ack=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.main", "--config", str(config_path), "--log-level", "WARNING"],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        wait_for(lambda: mute.frames() == set(names), 30, "the killed agent's first sends")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    mute.close()
    first_ids = {item.seq: item.id for item in mute.items()}

    cloud = FakeCloud(mosquitto, topic_space, "gw-test", ack=True)
    config.sources.clear()  # the frames were already inferred; only the outbox has them now
    config.models[0].sources.clear()
    agent = Agent(config)
    try:
        agent.start()
        assert agent.session == 2
        wait_for(lambda: {i.seq for i in cloud.items()} == set(first_ids), 15, "every unacked result again")
        wait_for(lambda: agent.outbox.stats() == (0, 0), 10, "the outbox to empty after acks")
        for item in cloud.items():
            assert item.replayed, item.seq
            assert item.id == first_ids[item.seq]
    finally:
        agent.stop()
        cloud.close()
    assert not [t for t in threading.enumerate() if t.name.startswith(("infer-", "source-", "publisher"))]


@pytest.mark.parametrize("port", [0])
def test_stop_joins_every_thread(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace, port: int
) -> None:
    manifest, frames, _ = _setup(tmp_path, n=2)
    before = set(threading.enumerate())
    agent = Agent(agent_config(tmp_path, mosquitto, topic_space, manifest, frames, http={"port": port}))
    agent.start()
    assert agent.link.wait_connected(5)
    agent.stop()
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, leaked


def test_network_cut_fires_will_and_reconnect_resends_unacked(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    manifest, frames, names = _setup(tmp_path, n=4)
    proxy = CuttableProxy(mosquitto)
    mute = FakeCloud(mosquitto, topic_space, "gw-test", ack=False)
    config = agent_config(
        tmp_path,
        ("127.0.0.1", proxy.port),
        topic_space,
        manifest,
        frames,
        outbox={"resend_after_s": 60.0},  # only the reconnect may trigger the re-send here
    )
    agent = Agent(config)
    try:
        agent.start()
        wait_for(lambda: mute.frames() == set(names), 15, "the first sends")
        assert not any(item.replayed for item in mute.items())
        proxy.cut()
        wait_for(lambda: any(not s.online for s in mute.states), 10, "the last will after the cut")
        will = next(s for s in mute.states if not s.online)
        assert will.session == 1
        wait_for(lambda: agent.link.epoch >= 2 and agent.link.connected, 15, "the reconnect")
        wait_for(lambda: {i.seq for i in mute.items() if i.replayed} == {1, 2, 3, 4}, 10, "re-sent items")
        assert mute.states[-1].online  # birth again after the will
        assert agent.outbox.stats()[0] == len(names)
    finally:
        agent.stop()
        proxy.close()
        mute.close()


def test_outbox_over_its_byte_cap_sheds_oldest_and_says_so_loudly(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace, caplog: pytest.LogCaptureFixture
) -> None:
    manifest, frames, names = _setup(tmp_path, n=15)
    cloud = FakeCloud(mosquitto, topic_space, "gw-test", ack=False)
    agent = Agent(
        agent_config(tmp_path, mosquitto, topic_space, manifest, frames, outbox={"max_bytes": 4096})
    )
    try:
        agent.start()
        wait_for(lambda: agent.outbox.last_seq == len(names), 15, "every frame inferred")
        wait_for(lambda: bool(cloud.events), 5, "the shedding event")
        event = json.loads(cloud.events[0])
        assert event["kind"] == "outbox_shed"
        assert event["level"] == "warning"
        assert event["details"]["stream"] == agent.outbox.stream
        assert event["details"]["first_seq"] == 1
        depth, size = agent.outbox.stats()
        assert size <= 4096
        assert depth + agent.outbox.shed_total == len(names)
        _, metrics = _get(agent.http_port, "/metrics")
        assert f"outbox_shed_total {float(agent.outbox.shed_total)}" in metrics.decode()
        assert any("SHED" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    finally:
        agent.stop()
        cloud.close()
