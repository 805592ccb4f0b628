"""Drift in the running agent: a look change becomes model_drift events on the outbox, a Prometheus
gauge and a telemetry field; a release without a reference runs unwatched. Real Mosquitto."""

from __future__ import annotations

import json
import logging
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from protocol.drift import DRIFT_EVENT_KIND
from protocol.topics import TopicSpace
from tests.support.agent import agent_config, build_model, write_frames
from tests.support.fake_cloud import FakeCloud
from tests.support.waiting import wait_for

WINDOW, STEP = 10, 5
# Flat grey frames: brightness = grey / 255. The line's look spreads evenly over 0.2..0.38,
# the reference's range; then the lamp is replaced and every frame is nearly white.
LINE = [52 + 5 * i for i in range(WINDOW)]
NEW_LAMP = [240] * 20


def _reference() -> dict[str, Any]:
    brightness = {
        "statistic": "ks",
        "edges": [0.2, 0.3, 0.4],
        "cdf": [0.0, 0.5, 1.0],
        "tolerance": 0.0,
        "threshold": 0.2,
    }
    return {
        "signals": {"brightness": brightness},
        "window": WINDOW,
        "step": STEP,
        "confirm_after": 2,
        "clear_after": 2,
        "clear_ratio": 0.8,
        "false_alarm_rate": 0.001,
        "flagged_share": 0.0,
        "reference_frames": 100,
        "calibration_frames": 100,
        "calibration_windows": 1000,
    }


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def test_a_look_change_is_an_event_a_gauge_and_a_telemetry_field(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    manifest = build_model(tmp_path / "model", manifest_overrides={"drift": _reference()})
    names = write_frames(tmp_path / "frames", LINE + NEW_LAMP)
    cloud = FakeCloud(mosquitto, topic_space, "gw-test")
    agent = Agent(agent_config(tmp_path, mosquitto, topic_space, manifest, tmp_path / "frames"))
    try:
        agent.start()
        wait_for(lambda: agent.outbox.last_seq == len(names), 15, "every frame inferred")
        wait_for(lambda: len(cloud.events) >= 2, 10, "the drift events")
        events = [json.loads(e) for e in cloud.events]
        assert [e["kind"] for e in events] == [DRIFT_EVENT_KIND] * 2
        suspected, confirmed = events
        assert (suspected["details"]["transition"], suspected["level"]) == ("suspected", "info")
        assert (confirmed["details"]["transition"], confirmed["level"]) == ("confirmed", "warning")
        details = confirmed["details"]
        assert details["slot"] == "defect"
        assert details["model"] == "tiny-defect 1.0.0"
        assert details["moved"] == "brightness:up"
        assert details["cause"] == "look"
        assert details["window"] == WINDOW
        assert details["brightness_threshold"] == 0.2
        assert details["brightness_statistic"] > 0.2
        assert "brightness up" in confirmed["message"]
        # Confirmed at the second evaluation over the threshold: frame 20 of 30.
        assert details["frames"] == WINDOW + 2 * STEP

        metrics = _metrics(agent.http_port)
        assert 'model_drift_state{slot="defect"} 2.0' in metrics
        assert 'model_drift_ratio{signal="brightness",slot="defect"}' in metrics
        drift = agent.telemetry.sample().drift
        assert [(d.slot, d.state, d.moved, d.frames) for d in drift] == [
            ("defect", "confirmed", ("brightness",), WINDOW)
        ]
        assert drift[0].ratio > 1.0
    finally:
        agent.stop()
        cloud.close()


def test_a_release_without_a_reference_runs_unwatched_and_says_so_once(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = build_model(tmp_path / "model")
    names = write_frames(tmp_path / "frames", LINE + NEW_LAMP)
    agent = Agent(agent_config(tmp_path, mosquitto, topic_space, manifest, tmp_path / "frames"))
    try:
        with caplog.at_level(logging.INFO, logger="edge_agent.drift_watch"):
            agent.start()
            wait_for(lambda: agent.outbox.last_seq == len(names), 15, "every frame inferred")
        said = [r for r in caplog.records if "carries no drift reference" in r.getMessage()]
        assert len(said) == 1
        assert agent.telemetry.sample().drift == ()
        assert "model_drift_state{" not in _metrics(agent.http_port)
    finally:
        agent.stop()
