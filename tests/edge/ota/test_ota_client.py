"""OTA on the gateway, one guarantee per test, against the real Mosquitto and a local HTTP server.

Each refusal test ends with the old model (1.0.0) still serving results and the failure reported.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from domain_models.golden_set import attach as attach_golden_set
from edge_agent.agent import Agent
from edge_agent.config import ConfigError, parse_config
from protocol.messages import utcnow
from protocol.signing import key_id
from protocol.topics import TopicSpace
from tests.support.ota_kit import Rig, Signer, write_model
from tests.support.waiting import wait_for


def test_newer_signed_model_is_installed_committed_reported_and_tags_results(rig: Rig) -> None:
    rig.start()
    rig.cloud.desire(rig.signer.offer(rig.release("1.1.0"), rig.server))
    rig.wait_phase("committed")
    report = rig.cloud.reported[-1]
    slot = report.slots["defect"]
    assert report.desired_revision == 1
    assert slot.active is not None
    assert slot.active.version == "1.1.0"
    assert slot.previous is not None
    assert slot.previous.version == "1.0.0"
    assert slot.error is None
    assert slot.health is not None
    assert slot.health.inferences >= 24
    wait_for(lambda: len(rig.cloud.ota_events()) >= 6, 5, "six ota events")
    phases = [e["details"]["phase"] for e in rig.cloud.ota_events()]
    assert phases == ["downloading", "verifying", "smoke_testing", "swapping", "health_window", "committed"]
    mark = utcnow()
    wait_for(lambda: len(rig.cloud.fresh(mark)) >= 5, 10, "results from the new model")
    assert rig.cloud.versions_since(mark) == {"1.1.0"}
    wait_for(lambda: rig.cloud.states[-1].models[0].version == "1.1.0", 5, "a birth listing 1.1.0")
    pointer = json.loads((rig.config.models_dir / "defect" / "pointer.json").read_text())
    assert pointer["trial"] is False
    assert "1.1.0-" in pointer["active"]
    assert pointer["previous"] == str(rig.factory)


def test_flipped_byte_in_artifact_is_refused(rig: Rig) -> None:
    rig.start()
    manifest = rig.release("1.1.0")
    artifact = manifest.parent / "tiny-defect.onnx"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    artifact.write_bytes(bytes(data))
    rig.refused(manifest, "sha256")


def test_flipped_byte_in_an_extra_file_is_refused(rig: Rig) -> None:
    rig.start()
    manifest = rig.release("1.1.0")
    golden = manifest.parent / "golden.png"
    data = bytearray(golden.read_bytes())
    data[-1] ^= 0x01
    golden.write_bytes(bytes(data))
    rig.refused(manifest, "golden.png: sha256 does not match")


def test_signature_by_an_untrusted_key_is_refused(rig: Rig) -> None:
    rig.start()
    stranger = Signer(rig.tmp / "keys", "stranger")
    rig.refused(rig.release("1.1.0"), "is not trusted", signer=stranger)


def test_signature_by_a_revoked_key_is_refused(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    probe = Rig(tmp_path / "probe", mosquitto, topic_space)  # only to learn the key id to revoke
    probe.server.close()
    probe.cloud.close()
    revoked = key_id(probe.signer.key.public_key())
    r = Rig(tmp_path, mosquitto, topic_space, revoked_keys=[revoked])
    r.signer = probe.signer
    r.config.ota.trusted_keys.append(probe.signer.pem)
    r.agent = Agent(r.config)
    try:
        r.start()
        r.refused(r.release("1.1.0"), f"key {revoked} is revoked")
    finally:
        r.close()


def test_older_version_is_refused_anti_rollback(rig: Rig) -> None:
    rig.start()
    rig.refused(rig.release("0.9.0"), "anti-rollback")


def test_explicit_rollback_with_allow_downgrade_installs_the_older_version(rig: Rig) -> None:
    rig.start()
    rig.cloud.desire(rig.signer.offer(rig.release("0.9.0"), rig.server, allow_downgrade=True))
    rig.wait_phase("committed")
    assert rig.agent.runners[0].manifest.version == "0.9.0"
    assert rig.cloud.reported[-1].slots["defect"].active.version == "0.9.0"  # type: ignore[union-attr]


def test_manifest_that_does_not_match_the_model_is_refused(rig: Rig) -> None:
    rig.start()
    rig.refused(rig.release("1.1.0", input_name="pixels"), "manifest says ['pixels']")


def test_artifact_larger_than_its_declared_size_is_aborted(rig: Rig) -> None:
    rig.start()
    manifest = rig.release("1.1.0")
    real = (manifest.parent / "tiny-defect.onnx").stat().st_size
    small = rig.release("1.1.0", size_bytes=real - 10)  # signed, so only the size bound can catch it
    rig.refused(small, f"more than the allowed {real - 10}")


def test_slow_download_times_out(tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace) -> None:
    r = Rig(tmp_path, mosquitto, topic_space, download_timeout_s=1.0)
    try:
        r.start()
        manifest = r.release("1.1.0")
        r.server.faults.slow_bytes_per_s["v1.1.0/tiny-defect.onnx"] = 100  # a few seconds for the file
        r.refused(manifest, "timed out")
    finally:
        r.close()


def test_model_that_fails_its_golden_smoke_test_is_refused(rig: Rig) -> None:
    rig.start()
    rig.refused(rig.release("1.1.0", bias=(25.0, -25.0)), "smoke test: label 'good'")


def test_model_that_degrades_in_the_health_window_is_rolled_back(rig: Rig) -> None:
    rig.start()
    # Passes its golden sample (bright -> scratch) but calls every part a defect.
    rig.cloud.desire(rig.signer.offer(rig.release("1.1.0", bias=(-5.0, 5.0)), rig.server))
    rig.wait_phase("rolled_back", timeout=30)
    slot = rig.cloud.reported[-1].slots["defect"]
    assert slot.error is not None
    assert "defect rate" in slot.error, slot.error
    assert slot.health is not None
    assert slot.health.defect_rate == 1.0
    assert any(item.model.version == "1.1.0" for item in rig.cloud.items())  # it did serve, briefly
    rig.assert_old_model_serves()
    pointer = json.loads((rig.config.models_dir / "defect" / "pointer.json").read_text())
    assert pointer == {"active": str(rig.factory), "previous": None, "trial": False, "revision": 0}
    wait_for(lambda: rig.cloud.states[-1].models[0].version == "1.0.0", 5, "a birth listing 1.0.0 again")


def test_cut_download_resumes_with_a_range_request(rig: Rig) -> None:
    rig.start()
    manifest = rig.release("1.1.0")
    rig.server.faults.cut_once_after["v1.1.0/tiny-defect.onnx"] = 100
    rig.cloud.desire(rig.signer.offer(manifest, rig.server))
    rig.wait_phase("committed")
    requests = [r for n, r in rig.server.faults.ranges if n == "v1.1.0/tiny-defect.onnx"]
    assert requests == [None, "bytes=100-"]


def test_desired_state_published_while_the_gateway_was_offline_is_applied_when_it_connects(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    r = Rig(tmp_path, mosquitto, topic_space)
    try:
        r.cloud.desire(r.signer.offer(r.release("1.1.0"), r.server))  # retained, agent not running yet
        r.agent.start()
        r.wait_phase("committed")
        assert r.agent.runners[0].manifest.version == "1.1.0"
    finally:
        r.close()
    assert not [t for t in threading.enumerate() if t.name == "ota" and t.is_alive()]  # stop joined it


def test_ota_enabled_without_a_trusted_key_is_a_config_error(tmp_path: Path) -> None:
    data = {"gateway_id": "gw", "line": "l", "state_dir": str(tmp_path), "ota": {"enabled": True}}
    with pytest.raises(ConfigError, match="ota: Value error, trusted_keys: at least one public key"):
        parse_config(data, "gateway.yaml")
    with pytest.raises(ConfigError, match="revoked_keys"):
        parse_config({**data, "ota": {"revoked_keys": ["nope"]}}, "gateway.yaml")
    assert parse_config(data | {"ota": {}}, "g").models_dir == tmp_path / "models"


def test_swap_mid_stream_neither_loses_nor_repeats_a_frame(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    r = Rig(tmp_path, mosquitto, topic_space, frames=150, loop=False)
    try:
        r.start()
        r.cloud.desire(r.signer.offer(r.release("1.1.0"), r.server))
        r.wait_phase("committed")
        wait_for(lambda: len({i.id for i in r.cloud.items()}) >= len(r.frames), 20, "every frame's result")
        by_id = {item.id: item for item in r.cloud.items()}
        assert sorted(item.frame for item in by_id.values()) == r.frames  # each frame exactly once
        assert sorted(item.seq for item in by_id.values()) == list(range(1, len(r.frames) + 1))
        versions = [item.model.version for item in sorted(by_id.values(), key=lambda i: i.seq)]
        switch = versions.index("1.1.0")
        assert set(versions[:switch]) == {"1.0.0"}  # one clean switch, in frame order
        assert set(versions[switch:]) == {"1.1.0"}
    finally:
        r.close()


def _golden_frames() -> list[np.ndarray]:
    """Sixteen flat frames from dark to bright: the tiny model's scratch score rises with them."""
    return [np.full((24, 32, 3), v, np.uint8) for v in range(0, 256, 16)]


def test_release_whose_golden_set_matches_its_reference_installs_and_reports_the_figures(rig: Rig) -> None:
    rig.start()
    manifest = rig.release("1.1.0")
    attach_golden_set(manifest, _golden_frames())
    rig.cloud.desire(rig.signer.offer(manifest, rig.server))
    rig.wait_phase("committed")
    checked = [e for e in rig.cloud.ota_events() if "golden_rank_correlation" in e["details"]]
    assert len(checked) == 1
    details = checked[0]["details"]
    assert details["golden_inputs"] == 16
    assert details["golden_rank_correlation"] == pytest.approx(1.0)
    assert details["golden_disagreements"] == 0
    assert details["golden_passed"] is True


def test_release_computing_otherwise_than_its_golden_reference_is_refused_with_figures(rig: Rig) -> None:
    """Fault: the build scores the golden inputs unlike its reference (as INT8 saturating on a CPU
    without VNNI does). Promise: it never serves; the old model does, and the figures are reported."""
    rig.start()
    manifest = rig.release("1.1.0")
    # The reference calls every frame scratch; this build calls the dark half good.
    everything_scratch = write_model(rig.tmp / "reference", "tiny-defect", "1.1.0", (-5.0, 5.0))
    attach_golden_set(manifest, _golden_frames(), reference=everything_scratch)
    error = rig.refused(manifest, "golden set on this CPU")
    assert "decisive labels differ" in error
    failed = [e for e in rig.cloud.ota_events() if e["details"]["phase"] == "failed"]
    assert failed[-1]["details"]["golden_passed"] is False
    assert failed[-1]["details"]["golden_disagreements"] >= 1


def test_factory_model_disagreeing_with_its_golden_set_starts_with_a_warning_event(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    """Fault: the model shipped with the gateway scores its golden set unlike the reference on this
    CPU. Promise: the gateway still serves it (no slot left without a model) and says so loudly."""
    r = Rig(tmp_path, mosquitto, topic_space)
    everything_scratch = write_model(tmp_path / "reference", "tiny-defect", "1.0.0", (-5.0, 5.0), pad_bytes=1)
    attach_golden_set(r.factory, _golden_frames(), reference=everything_scratch)
    r.agent = Agent(r.config)
    try:
        r.start()
        warnings = [json.loads(p) for p in list(r.cloud.events)]
        golden = [e for e in warnings if e["kind"] == "golden_set"]
        assert len(golden) == 1
        assert golden[0]["level"] == "warning"
        assert golden[0]["details"]["golden_passed"] is False
        assert r.agent.runners[0].manifest.version == "1.0.0"
    finally:
        r.close()
