"""``kill -9`` of the agent process at every OTA step: the restart runs exactly the old or the new
model, loads it, serves with it, and reports a rollback when the kill hit an uncommitted swap."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge_agent.agent import Agent
from protocol.messages import utcnow
from protocol.topics import TopicSpace
from tests.support.ota_kit import Rig
from tests.support.waiting import wait_for

# step -> the version a restart must serve. Until the pointer is replaced the old model is the
# active one; between swap and commit the pointer is on trial, and a restart rolls back.
EXPECTED = {
    "downloading": "1.0.0",
    "verifying": "1.0.0",
    "smoke_testing": "1.0.0",
    "swapping": "1.0.0",  # release directory renamed into place, pointer not yet replaced
    "health_window": "1.0.0",  # trial pointer: rolled back at restart
    "committing": "1.0.0",  # health passed, commit not yet written: still a trial
    "committed": "1.1.0",
}


@pytest.mark.parametrize("step", list(EXPECTED))
def test_kill_9_at_each_ota_step_leaves_the_old_or_new_model_active_and_loadable(
    step: str, tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    rig = Rig(tmp_path, mosquitto, topic_space, test_pause_at=step)
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(yaml.safe_dump(json.loads(rig.config.model_dump_json())))
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.main", "--config", str(config_path), "--log-level", "ERROR"],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    try:
        wait_for(lambda: len(rig.cloud.items()) >= 15, 30, "results from the factory model")
        rig.cloud.desire(rig.signer.offer(rig.release("1.1.0"), rig.server))
        wait_for(
            lambda: any(e["message"] == f"paused at {step} (test hook)" for e in rig.cloud.ota_events()),
            30,
            f"the agent to pause at {step}",
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    rig.cloud.clear_desired()  # the restart must show what is on disk, not install again
    expected = EXPECTED[step]

    rig.config.ota.test_pause_at = None
    rig.agent = Agent(rig.config)
    try:
        rig.agent.start()
        assert rig.agent.runners[0].manifest.version == expected
        mark = utcnow()
        wait_for(lambda: len(rig.cloud.fresh(mark)) >= 5, 15, "results after the restart")
        assert rig.cloud.versions_since(mark) == {expected}
        wait_for(
            lambda: (
                rig.cloud.reported[-1].slots["defect"].active.version == expected  # type: ignore[union-attr]
                # The revision acted on before the kill survives it: a replay of it stays refused.
                and rig.cloud.reported[-1].desired_revision == 1
            ),
            10,
            "the restarted agent's report",
        )
        slot = rig.cloud.reported[-1].slots["defect"]
        if step in ("health_window", "committing"):
            assert slot.phase == "rolled_back"
            assert slot.error is not None
            assert "restarted during the health window" in slot.error
    finally:
        rig.close()


def test_download_killed_midway_resumes_from_the_partial_file_after_restart(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    rig = Rig(tmp_path, mosquitto, topic_space, test_pause_at="downloading")
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(yaml.safe_dump(json.loads(rig.config.model_dump_json())))
    manifest = rig.release("1.1.0", pad_bytes=400_000)  # many reads: the kill lands mid-file
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.main", "--config", str(config_path), "--log-level", "ERROR"],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    try:
        wait_for(lambda: len(rig.cloud.items()) >= 15, 30, "results from the factory model")
        rig.cloud.desire(rig.signer.offer(manifest, rig.server))
        wait_for(
            lambda: any(e["message"] == "paused at downloading (test hook)" for e in rig.cloud.ota_events()),
            30,
            "the agent to pause mid-download",
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    partial = list((rig.config.models_dir / "defect" / ".staging").glob("*/tiny-defect.onnx.part"))
    assert len(partial) == 1
    have = partial[0].stat().st_size
    assert 0 < have < 400_000

    rig.config.ota.test_pause_at = None
    rig.agent = Agent(rig.config)  # the retained desired state is still there
    try:
        rig.agent.start()
        rig.wait_phase("committed", timeout=30)
        assert rig.agent.runners[0].manifest.version == "1.1.0"
        requests = [r for n, r in rig.server.faults.ranges if n == "v1.1.0/tiny-defect.onnx"]
        assert requests == [None, f"bytes={have}-"]
    finally:
        rig.close()
