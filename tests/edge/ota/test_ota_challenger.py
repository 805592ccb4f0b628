"""edge_agent/ota/challenger.py against the real Mosquitto: a challenger is verified like an OTA install,
shadows without touching a result, reports comparison records, is refused and never run when bad, is
dropped when no longer asked for, and is promoted by one atomic swap without a download."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocol.messages import DefectOutput, utcnow
from protocol.ota import ChallengerReport
from protocol.shadow import CHALLENGER_EVENT_KIND, SHADOW_EVENT_KIND, ShadowComparison
from protocol.topics import TopicSpace
from tests.support.ota_kit import Rig, Signer
from tests.support.shadow import ALL_SCRATCH_BIAS, SHADOW
from tests.support.waiting import wait_for


@pytest.fixture
def rig(tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace) -> Iterator[Rig]:
    r = Rig(tmp_path, mosquitto, topic_space)
    r.config.shadow = SHADOW
    try:
        yield r
    finally:
        r.close()


def _challenger(rig: Rig) -> ChallengerReport | None:
    return rig.cloud.reported[-1].slots["defect"].challenger if rig.cloud.reported else None


def _wait_challenger(rig: Rig, phase: str) -> ChallengerReport:
    wait_for(lambda: (c := _challenger(rig)) is not None and c.phase == phase, 30, f"challenger {phase}")
    report = _challenger(rig)
    assert report is not None
    return report


def _records(rig: Rig) -> list[ShadowComparison]:
    return [ShadowComparison.from_details(e["details"]) for e in rig.cloud.events_of(SHADOW_EVENT_KIND)]


def _shadowing(rig: Rig, **release: Any) -> Path:
    """Start the rig and have it shadow an all-scratch 1.1.0; returns the release's manifest."""
    rig.start()
    manifest = rig.release("1.1.0", ALL_SCRATCH_BIAS, **release)
    rig.cloud.desire_all({}, {"defect": rig.signer.offer(manifest, rig.server)})
    _wait_challenger(rig, "shadowing")
    return manifest


def test_challenger_shadows_with_known_counts_and_never_changes_a_result(rig: Rig) -> None:
    _shadowing(rig)
    mark = utcnow()
    wait_for(lambda: len(_records(rig)) >= 4, 30, "comparison records")
    later = _records(rig)[1:]  # the first window holds the frames skipped while it timed itself
    for record in later:
        assert (record.compared, record.skipped, record.challenger_errors) == (12, 0, 0)
        # 12 consecutive frames of the looping replay: 4 bright (defect to both), 8 dark (good to the champion).
        assert {(c.champion, c.challenger): c.frames for c in record.matrix} == {
            ("defect", "defect"): 4,
            ("good", "defect"): 8,
        }
        assert (record.champion.version, record.challenger.version) == ("1.0.0", "1.1.0")
    bright = {name for i, name in enumerate(rig.frames) if i % 3 == 0}
    fresh = rig.cloud.fresh(mark)
    assert fresh
    assert {item.model.version for item in fresh} == {"1.0.0"}
    for item in fresh:
        assert isinstance(item.output, DefectOutput)
        assert item.output.is_defect == (item.frame in bright)  # the challenger calls every frame a defect
    assert rig.agent.runners[0].manifest.version == "1.0.0"
    registry = rig.agent.metrics.registry
    assert (registry.get_sample_value("shadow_frames_compared_total", {"slot": "defect"}) or 0) >= 36
    wait_for(lambda: (c := _challenger(rig)) is not None and c.compared > 0, 40, "reported counts")


def _refused(rig: Rig, words: str, manifest: Path, signer: Signer | None = None) -> None:
    rig.start()
    rig.cloud.desire_all({}, {"defect": (signer or rig.signer).offer(manifest, rig.server)})
    report = _wait_challenger(rig, "failed")
    assert report.error is not None
    assert words in report.error

    # The reported state and the event travel separately (state retained, event through the outbox).
    def failed_events() -> list[dict[str, Any]]:
        return [e for e in rig.cloud.events_of(CHALLENGER_EVENT_KIND) if e["details"]["phase"] == "failed"]

    wait_for(lambda: bool(failed_events()), 30, "the challenger's 'failed' event")
    failed = failed_events()
    assert failed[0]["level"] == "error"
    shadow = rig.agent.shadow
    assert shadow is not None
    assert shadow.slots["defect"].challenger is None  # never run
    assert _records(rig) == []
    assert not (rig.config.models_dir / "defect" / "challenger.json").exists()
    rig.assert_old_model_serves()


def test_challenger_signed_by_an_untrusted_key_is_reported_failed_and_never_runs(rig: Rig) -> None:
    stranger = Signer(rig.tmp / "stranger", "stranger")
    _refused(rig, "signature", rig.release("1.1.0", ALL_SCRATCH_BIAS), signer=stranger)


def test_challenger_failing_its_smoke_test_is_reported_failed_and_never_runs(rig: Rig) -> None:
    golden = {"input": "golden.png", "expected_label": "good", "expected_scores": {"good": 0.99}}
    _refused(rig, "smoke test", rig.release("1.1.0", ALL_SCRATCH_BIAS, golden=golden))


def test_challenger_no_longer_asked_for_is_dropped(rig: Rig) -> None:
    _shadowing(rig)
    rig.cloud.desire_all({}, {})
    wait_for(lambda: _challenger(rig) is None, 20, "the challenger gone from the report")
    shadow = rig.agent.shadow
    assert shadow is not None
    assert shadow.slots["defect"].challenger is None
    assert not (rig.config.models_dir / "defect" / "challenger.json").exists()


def test_promotion_swaps_the_challenger_in_without_a_download_keeping_the_old_as_previous(rig: Rig) -> None:
    manifest = _shadowing(rig)
    rig.cloud.desire_all({"defect": rig.signer.offer(manifest, rig.server)})
    wait_for(
        lambda: (
            (s := rig.cloud.reported[-1].slots["defect"]).phase == "committed"
            and s.active is not None
            and s.active.version == "1.1.0"
        ),
        30,
        "the promotion committed",
    )
    slot = rig.cloud.reported[-1].slots["defect"]
    assert slot.previous is not None
    assert slot.previous.version == "1.0.0"
    assert slot.challenger is None
    assert rig.agent.runners[0].manifest.version == "1.1.0"
    assert [n for n, _ in rig.server.faults.ranges].count(
        "v1.1.0/tiny-defect.onnx"
    ) == 1  # no second download
    store = rig.config.models_dir / "defect"
    assert not (store / "challenger.json").exists()
    mark = utcnow()
    wait_for(lambda: len(rig.cloud.fresh(mark)) >= 5, 15, "results of the new champion")
    assert rig.cloud.versions_since(mark) == {"1.1.0"}
    assert _records(rig)  # the challenger's last window was recorded at the swap


def test_promotion_mid_stream_neither_loses_nor_repeats_a_frame(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    r = Rig(tmp_path, mosquitto, topic_space, frames=600, loop=False)
    r.config.shadow = SHADOW
    try:
        manifest = _shadowing(r)
        r.cloud.desire_all({"defect": r.signer.offer(manifest, r.server)})
        r.wait_phase("committed", timeout=30)
        wait_for(lambda: len({i.id for i in r.cloud.items()}) >= len(r.frames), 40, "every frame's result")
        by_id = {item.id: item for item in r.cloud.items()}
        assert sorted(item.frame for item in by_id.values()) == r.frames  # each frame exactly once
        assert sorted(item.seq for item in by_id.values()) == list(range(1, len(r.frames) + 1))
        versions = [item.model.version for item in sorted(by_id.values(), key=lambda i: i.seq)]
        switch = versions.index("1.1.0")
        assert set(versions[:switch]) == {"1.0.0"}  # one clean switch, in frame order
        assert set(versions[switch:]) == {"1.1.0"}
    finally:
        r.close()
