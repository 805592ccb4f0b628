"""The parcel pipeline retrains (tiny) to well above chance, exports a manifest true to its graph,
quantizes to INT8 within the gate, and ships a golden sample the OTA smoke test accepts; its damage
crop classifier separates damaged parcels well above chance, per parcel, on held-out lines."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from domain_models.cli import main as cli_main
from domain_models.common import GateResult, PipelineError, check_manifest_matches_onnx, session
from domain_models.parcels.damage import DamageRelease, build
from domain_models.parcels.damage_data import detected_crops, heldout_lines, truth_crops
from domain_models.parcels.damage_eval import crop_scores
from domain_models.parcels.damage_eval import quantize as quantize_damage
from domain_models.parcels.damage_train import DamageSettings
from domain_models.parcels.evaluate import evaluate
from domain_models.parcels.quantize import frames, parcel_iou, quantize
from domain_models.parcels.train import NAME, TrainSettings, train, write_release
from edge_agent.ota.verify import smoke_test
from edge_agent.runtime.model import ModelLoadError
from edge_agent.runtime.parcel_damage import DamageClassifier
from edge_agent.runtime.parcels import ParcelRunner
from protocol.inference import DAMAGE_THRESHOLD
from protocol.manifest import artifact_path, load_manifest

ARTIFACTS = Path(__file__).resolve().parents[3] / "domain_models" / "parcels" / "artifacts"
# The module's fixture retrains a detector and a crop classifier (tiny, on a shared CPU).
pytestmark = pytest.mark.timeout(900)
BUNDLED = "1.1.0"


@dataclass(frozen=True)
class Release:
    fp32_manifest: Path
    int8_manifest: Path
    gate: GateResult
    damage: DamageRelease


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    logging.getLogger("domain_models").setLevel(logging.WARNING)
    out = tmp_path_factory.mktemp("parcels")
    fp32_manifest, _ = train(out, TrainSettings.tiny(seed=1))
    damage = build(out, fp32_manifest, DamageSettings.tiny(seed=1), "1.0.0", tolerance_points=2.0)
    # The tiny releases always carry the classifier, whatever its figures: the plumbing is under test.
    thresholds = dict(load_manifest(fp32_manifest).thresholds) | {DAMAGE_THRESHOLD: damage.cut}
    fp32 = artifact_path(fp32_manifest, load_manifest(fp32_manifest))
    fp32_manifest = write_release(fp32, out, NAME, "1.0.0", {}, "0" * 64, 1, thresholds, [damage.fp32])
    int8 = out / f"{NAME}-1.0.0.int8.onnx"
    gate = quantize(fp32, int8, seed=1, tolerance_points=2.0, calibration_frames=16)
    int8_damage = [damage.int8 or damage.fp32]
    int8_manifest = write_release(
        int8, out, f"{NAME}-int8", "1.0.0", {}, "0" * 64, 1, thresholds, int8_damage
    )
    return Release(fp32_manifest, int8_manifest, gate, damage)


def test_tiny_retrain_finds_and_counts_parcels_well_above_chance(release: Release) -> None:
    inputs, targets = frames(1, 2, 5, held_out=True)
    fp32 = artifact_path(release.fp32_manifest, load_manifest(release.fp32_manifest))
    # Calling every pixel "parcel" scores the parcel share of the frame, ~0.3 IoU.
    assert parcel_iou(fp32, inputs, targets) > 0.75
    figures = evaluate(release.fp32_manifest, seed=1, sequences=1, frames=60, unseen=False)
    assert figures["true_parcels"] >= 3
    assert figures["recall"] >= 0.6
    assert figures["precision"] >= 0.6
    assert figures["footprint_mae_mm"] < 30.0


def test_exported_manifest_matches_the_onnx_graph_and_a_mismatch_is_named(
    release: Release, tmp_path: Path
) -> None:
    for manifest_path in (release.fp32_manifest, release.int8_manifest):
        manifest = load_manifest(manifest_path)
        check_manifest_matches_onnx(manifest_path, manifest)
        assert manifest.task == "parcels"
        assert {"mm_per_px", "count_line_x"} <= set(manifest.thresholds)
    bad = json.loads(release.fp32_manifest.read_text())
    bad["inputs"][0]["name"] = "pixels"
    broken = release.fp32_manifest.parent / "broken.manifest.json"
    broken.write_text(json.dumps(bad))
    with pytest.raises(PipelineError, match="pixels"):
        check_manifest_matches_onnx(broken, load_manifest(broken))
    with pytest.raises(ModelLoadError, match="pixels"):
        ParcelRunner(broken, "x")


def test_int8_passes_the_gate_and_its_maps_stay_close_to_fp32(release: Release) -> None:
    assert release.gate.passed
    assert release.gate.int8 > 0.7
    inputs, _ = frames(1, 1, 4, held_out=True)
    fp32 = session(artifact_path(release.fp32_manifest, load_manifest(release.fp32_manifest)))
    int8 = session(artifact_path(release.int8_manifest, load_manifest(release.int8_manifest)))
    for x in inputs:
        a = np.asarray(fp32.run(None, {"image": x[None]})[0])
        b = np.asarray(int8.run(None, {"image": x[None]})[0])
        assert float(np.abs(a - b).mean()) < 0.05
        assert float(((a[:, 0] > 0.5) != (b[:, 0] > 0.5)).mean()) < 0.03


def test_golden_sample_passes_the_ota_smoke_test(release: Release) -> None:
    for manifest_path in (
        release.fp32_manifest,
        release.int8_manifest,
        ARTIFACTS / f"{NAME}-{BUNDLED}.manifest.json",
        ARTIFACTS / f"{NAME}-int8-{BUNDLED}.manifest.json",
    ):
        summary = smoke_test(ParcelRunner(manifest_path, "ota"), manifest_path)
        assert summary.startswith("golden ")


def test_cli_export_copies_a_release_that_verifies(release: Release, tmp_path: Path) -> None:
    out = tmp_path / "export"
    assert cli_main(["export", "parcels", "--model", str(release.int8_manifest), "--out", str(out)]) == 0
    copied = out / release.int8_manifest.name
    manifest = load_manifest(copied)  # hashes of artifact, routes and golden all verified
    assert ParcelRunner(copied, "x").manifest == manifest


def test_bundled_release_is_small_and_carries_its_measured_metrics() -> None:
    for name in (f"{NAME}-{BUNDLED}.manifest.json", f"{NAME}-int8-{BUNDLED}.manifest.json"):
        manifest = load_manifest(ARTIFACTS / name)
        assert manifest.size_bytes < 2_000_000
        for key in ("exact_count_rate", "barcode_read_rate", "footprint_mae_mm", "unseen_exact_count_rate"):
            assert key in manifest.metrics
        assert manifest.metrics["recall"] > 0.8
        # The damage classifier's per-parcel figures are recorded whether or not it ships.
        for key in ("damage_crop_balanced_accuracy", "unseen_damage_crop_false_damage_rate"):
            assert key in manifest.metrics
        shipped = [n for n in manifest.files if n.startswith("parcel-damage")]
        assert (DAMAGE_THRESHOLD in manifest.thresholds) == bool(shipped)
        for n in shipped:
            assert (ARTIFACTS / n).stat().st_size < 1_000_000
    card = (ARTIFACTS / "MODEL_CARD.md").read_text()
    assert "unseen" in card
    assert "INT8" in card


def test_tiny_damage_classifier_separates_damaged_parcels_well_above_chance(release: Release) -> None:
    seen, unseen = release.damage.measured["FP32 seen"], release.damage.measured["FP32 unseen"]
    assert seen["parcels"] >= 10
    assert 3 <= seen["damaged_parcels"] <= seen["parcels"] - 3
    # Chance is 0.5 for both; flagging everything or nothing also scores a balanced accuracy of 0.5.
    assert seen["auc"] > 0.75
    assert seen["balanced_accuracy"] > 0.65
    assert unseen["parcels"] >= 10
    # The cut-off was chosen on the calibration lines, where it flags at most 1 % of intact boxes.
    assert release.damage.measured["FP32 calibration"]["false_damage_rate"] <= 0.01


def test_damage_int8_passes_its_gate_and_scores_like_fp32(release: Release) -> None:
    assert release.damage.gate.result.passed
    assert release.damage.int8 is not None
    runner = ParcelRunner(release.fp32_manifest, "x")
    crops = detected_crops(runner, heldout_lines(1, 1, unseen=False), 12)
    assert len(crops) >= 8
    a, b = crop_scores(release.damage.fp32, crops), crop_scores(release.damage.int8, crops)
    assert float(np.abs(a - b).mean()) < 0.05
    assert float(np.abs(a - b).max()) < 0.25


def test_damage_classifier_is_checked_against_the_manifest_and_named_when_wrong(
    release: Release, tmp_path: Path
) -> None:
    manifest = load_manifest(release.fp32_manifest)
    classifier = ParcelRunner(release.fp32_manifest, "x").damage_model
    assert classifier is not None
    assert classifier.threshold == release.damage.cut
    name = release.damage.fp32.name
    # The detector's graph under the classifier's name: the tensor check names what differs.
    (tmp_path / name).write_bytes(artifact_path(release.fp32_manifest, manifest).read_bytes())
    with pytest.raises(ModelLoadError, match=r"parcel-damage.*input names \['image'\].*\['crops'\]"):
        DamageClassifier(tmp_path / "m.json", manifest, name, 1)
    without = manifest.model_copy(update={"thresholds": {"mm_per_px": 1.25, "count_line_x": 0.5}})
    with pytest.raises(ModelLoadError, match=DAMAGE_THRESHOLD):
        DamageClassifier(release.fp32_manifest, without, name, 1)


def test_a_damage_int8_outside_its_gate_is_refused_with_its_figures(release: Release, tmp_path: Path) -> None:
    crops = truth_crops(heldout_lines(1, 2, unseen=False), 16, seed=1)
    assert crops.labels.any()
    assert not crops.labels.all()
    int8 = tmp_path / "parcel-damage-x.int8.onnx"
    # A negative tolerance demands that INT8 beat FP32 by 100 points: impossible, so refused.
    refused = quantize_damage(release.damage.fp32, int8, crops, crops, tolerance_points=-100.0)
    assert refused.int8 is None
    assert not int8.exists()
    assert "EXCEEDS" in refused.result.describe()
