"""OTA on a parcel line: a new detector release keeps the line's calibration and sort table.

The line's facts live in the gateway config, not in the release, so every load of a release into
the slot (verify, smoke test, swap) uses the same settings; the golden sample, recorded with the
release's own values, is judged by the release as signed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import cv2
import pytest

from edge_agent.agent import Agent
from edge_agent.ota.verify import VerifyError, golden_runner, load_release, smoke_test
from edge_agent.runtime.parcel_routes import ParcelLineSettings, RouteRule, RouteTable
from edge_agent.runtime.parcels import ParcelRunner
from edge_agent.runtime.registry import SlotSettings
from protocol.manifest import ModelManifest
from protocol.messages import ParcelOutput, utcnow
from protocol.topics import TopicSpace
from simulators.parcel_line import ParcelLine, ParcelLineConfig
from tests.support.agent import agent_config
from tests.support.ota_kit import ArtifactServer, OtaCloud, Signer, write_model
from tests.support.waiting import wait_for

ARTIFACTS = Path(__file__).resolve().parents[3] / "domain_models" / "parcels" / "artifacts"
MANIFEST = ARTIFACTS / "parcel-detector-1.1.0.manifest.json"
# This line's own lanes: none of them is in the release's table (lane_1..3, reject, manual, oversize).
LINE_ROUTES = RouteTable(rules=(RouteRule(lane="chute-a", prefixes=("1", "PX1")),), default="chute-b")
LINE = ParcelLineSettings(mm_per_px=2.5, count_line_x=0.5, routes=LINE_ROUTES)


def write_parcel_release(folder: Path, version: str) -> Path:
    """The bundled detector re-issued as ``version`` (same weights); returns its manifest path."""
    folder.mkdir(parents=True, exist_ok=True)
    data = json.loads(MANIFEST.read_text())
    for name in [data["artifact"], *data["files"]]:
        shutil.copy2(ARTIFACTS / name, folder / name)
    data["version"] = version
    path = folder / MANIFEST.name
    path.write_text(ModelManifest.model_validate(data).model_dump_json(indent=2))
    return path


def test_load_release_applies_the_slots_settings_and_the_golden_sample_judges_the_release(
    tmp_path: Path,
) -> None:
    release = write_parcel_release(tmp_path / "v1.1.0", "1.1.0")
    served = load_release(release, "parcels", 1, SlotSettings(LINE))
    assert isinstance(served, ParcelRunner)
    assert (served.mm_per_px, served.line_x, served.routes) == (2.5, 0.5, LINE_ROUTES)
    as_signed = load_release(release, "parcels", 1)
    assert isinstance(as_signed, ParcelRunner)
    assert as_signed.mm_per_px == 1.25
    # The golden label (a release lane) is not one of this line's lanes: judged with the line's
    # table the sound release would fail; the golden runner judges it as signed.
    with pytest.raises(VerifyError, match="golden expects 'lane_2'"):
        smoke_test(served, release)
    judge = golden_runner(served, release, SlotSettings(LINE))
    assert isinstance(judge, ParcelRunner)
    assert judge.mm_per_px == 1.25
    assert smoke_test(judge, release).startswith("golden parcel-detector-golden.png: lane_2")
    assert golden_runner(as_signed, release, SlotSettings()) is as_signed


def test_a_release_of_another_task_is_refused_for_a_parcel_slot(tmp_path: Path) -> None:
    defect = write_model(tmp_path / "v2.0.0", "tiny-defect", "2.0.0", (5.0, -5.0))
    with pytest.raises(VerifyError, match="'parcels' section .* task is 'defect'"):
        load_release(defect, "parcels", 1, SlotSettings(LINE))


class ParcelRig:
    """A parcel-line gateway on detector 1.1.0 with the line's settings in its config, OTA on."""

    def __init__(self, tmp_path: Path, broker: tuple[str, int], topics: TopicSpace) -> None:
        frames = tmp_path / "frames"
        frames.mkdir()
        line = ParcelLine(ParcelLineConfig(seed=7))
        for i in range(60):
            assert cv2.imwrite(str(frames / f"frame_{i:06d}.png"), line.frame(i).image)
        self.releases = tmp_path / "releases"
        self.server = ArtifactServer(self.releases)
        self.signer = Signer(tmp_path / "keys", "engineer")
        self.cloud_signer = Signer(tmp_path / "keys", "cloud")
        self.config = agent_config(
            tmp_path,
            broker,
            topics,
            MANIFEST,
            frames,
            sources=[{"type": "folder", "name": "belt", "path": str(frames), "loop": True, "rate_fps": 20}],
            models=[
                {
                    "slot": "parcels",
                    "manifest": str(MANIFEST),
                    "sources": ["belt"],
                    "parcels": LINE.model_dump(mode="json"),
                }
            ],
            # Parcels give a result per crossing, not per frame: a short, time-only health window.
            ota={
                "enabled": True,
                "trusted_keys": [str(self.signer.pem)],
                "desired_keys": [str(self.cloud_signer.pem)],
                "download_timeout_s": 10,
                "health_window_s": 3,
                "health_window_inferences": 0,
            },
        )
        self.cloud = OtaCloud(broker, topics, self.cloud_signer)
        self.agent = Agent(self.config)

    def phase(self) -> str | None:
        return self.cloud.reported[-1].slots["parcels"].phase if self.cloud.reported else None

    def close(self) -> None:
        self.agent.stop()
        self.server.close()
        self.cloud.close()


@pytest.fixture
def parcel_rig(tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace) -> Iterator[ParcelRig]:
    rig = ParcelRig(tmp_path, mosquitto, topic_space)
    try:
        yield rig
    finally:
        rig.close()


def _lanes_since(rig: ParcelRig, mark: datetime) -> set[str]:
    outputs = [item.output for item in rig.cloud.fresh(mark)]
    assert all(isinstance(o, ParcelOutput) for o in outputs)
    return {o.label for o in outputs}


def test_an_ota_swap_keeps_the_lines_calibration_and_sort_table(parcel_rig: ParcelRig) -> None:
    rig = parcel_rig
    rig.agent.start()
    wait_for(lambda: len(rig.cloud.items()) >= 2, 30, "parcels counted by detector 1.1.0")
    before = rig.agent.workers[0].runner
    assert isinstance(before, ParcelRunner)
    assert (before.mm_per_px, before.routes) == (2.5, LINE_ROUTES)

    release = write_parcel_release(rig.releases / "v1.2.0", "1.2.0")
    rig.cloud.desire(rig.signer.offer(release, rig.server), slot="parcels")
    wait_for(lambda: rig.phase() in ("committed", "failed", "rolled_back"), 60, "the update to finish")
    assert rig.phase() == "committed", rig.cloud.reported[-1].slots["parcels"].error
    after = rig.agent.workers[0].runner
    assert isinstance(after, ParcelRunner)
    assert after.manifest.version == "1.2.0"
    assert after is not before
    assert (after.mm_per_px, after.line_x, after.routes) == (2.5, 0.5, LINE_ROUTES)

    mark = utcnow()
    wait_for(lambda: len(rig.cloud.fresh(mark)) >= 2, 30, "parcels counted by detector 1.2.0")
    assert rig.cloud.versions_since(mark) == {"1.2.0"}
    # Only this line's lanes, never the release's own (lane_1..3, manual, reject, oversize).
    assert _lanes_since(rig, mark) <= {"chute-a", "chute-b"}

    # A restart boots the installed release from its pointer, again with the line's settings.
    rig.agent.stop()
    rig.agent = Agent(rig.config)
    rig.agent.start()
    booted = rig.agent.workers[0].runner
    assert isinstance(booted, ParcelRunner)
    assert booted.manifest.version == "1.2.0"
    assert (booted.mm_per_px, booted.routes) == (2.5, LINE_ROUTES)
