"""``kill -9`` of the agent process while a challenger shadows and at each step of its promotion:
the restart ends on exactly one champion (the old one still shadowed, or the promoted one with no
challenger left), and no result is lost or doubled across the kill."""

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
from protocol.shadow import SHADOW_EVENT_KIND
from protocol.topics import TopicSpace
from tests.support.ota_kit import Rig
from tests.support.shadow import SHADOW
from tests.support.waiting import wait_for

# Where the kill lands -> (champion after the restart, challenger still shadowing). The retained
# desired state of a promotion asks for 1.1.0 as the slot's model and still names it as the
# challenger (cloud/ota/desired.py), as the cloud's promotion rollout leaves it.
EXPECTED = {
    "shadowing": ("1.0.0", True),  # no promotion asked: the restart shadows again
    "promoting": ("1.1.0", False),  # pointer not yet written: the restart promotes from scratch
    "promoted": ("1.1.0", False),  # pointer written, challenger record not yet cleared
}


@pytest.mark.slow
@pytest.mark.parametrize("step", list(EXPECTED))
def test_kill_9_while_shadowing_or_promoting_ends_on_one_champion_losing_no_result(
    step: str, tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    promote = step != "shadowing"
    rig = Rig(tmp_path, mosquitto, topic_space, test_pause_at=step if promote else None)
    rig.config.shadow = SHADOW
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(yaml.safe_dump(json.loads(rig.config.model_dump_json())))
    manifest = rig.release("1.1.0")
    offer = rig.signer.offer(manifest, rig.server)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.main", "--config", str(config_path), "--log-level", "ERROR"],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    try:
        wait_for(lambda: len(rig.cloud.items()) >= 15, 30, "results from the factory model")
        rig.cloud.desire_all({}, {"defect": offer})
        wait_for(lambda: rig.cloud.events_of(SHADOW_EVENT_KIND), 30, "a comparison record of the challenger")
        if promote:
            rig.cloud.desire_all({"defect": offer}, {"defect": offer})
            wait_for(
                lambda: any(e["message"] == f"paused at {step} (test hook)" for e in rig.cloud.ota_events()),
                30,
                f"the agent to pause at {step}",
            )
    finally:
        proc.send_signal(signal.SIGKILL)  # the fault
        proc.wait(10)
    killed_at = max(item.seq for item in rig.cloud.items())
    champion, shadowing = EXPECTED[step]

    rig.config.ota.test_pause_at = None
    rig.agent = Agent(rig.config)  # the same state directory; the retained desired state is there
    try:
        rig.agent.start()
        wait_for(
            lambda: (
                (s := rig.cloud.reported[-1].slots["defect"]).active is not None
                and s.active.version == champion
                and s.phase in ("idle", "committed")  # idle: no install since the restart
                and (s.challenger is not None and s.challenger.phase == "shadowing") == shadowing
            ),
            30,
            f"the restarted agent on {champion} with{'' if shadowing else ' no'} challenger",
        )
        assert [r.manifest.version for r in rig.agent.runners] == [champion]  # exactly one champion
        store = rig.config.models_dir / "defect"
        assert (store / "challenger.json").exists() == shadowing
        mark = utcnow()
        wait_for(lambda: len(rig.cloud.fresh(mark)) >= 5, 15, "results after the restart")
        assert rig.cloud.versions_since(mark) == {champion}
        # The promise: every result the killed process stored reaches the cloud once, and the
        # restart numbers on from it (a re-send carries the same id and seq; none is new twice).
        wait_for(
            lambda: rig.agent.outbox.stats() == (0, 0) or len(rig.cloud.items()) > killed_at, 15, "re-sends"
        )
        by_id = {item.id: item.seq for item in rig.cloud.items()}
        seqs = sorted(by_id.values())
        assert seqs == list(range(1, len(seqs) + 1)), "a result was lost or doubled across the kill"
        assert seqs[-1] > killed_at
    finally:
        rig.close()
