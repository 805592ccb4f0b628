"""The few-shot anomaly pipeline end to end on a tiny generated MVTec folder.

Trains a tiny PatchCore model (30 good frames, 128x96 input, 200-patch coreset) once per module,
then checks what a release promises: accuracy well above chance, a manifest that matches the
graph, a golden sample the gateway runtime reproduces, INT8 parity, and the gate's refusal.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from domain_models.anomaly.data import CALIBRATION, GOOD, DatasetError, open_mvtec, read_image
from domain_models.anomaly.evaluate import evaluate_onnx, open_model, run_images
from domain_models.anomaly.quantize import build_int8, quantize_model
from domain_models.anomaly.release import Calibration
from domain_models.anomaly.stats import spearman
from domain_models.anomaly.train import TrainConfig, train
from domain_models.cli import main
from domain_models.common import PipelineError, check_manifest_matches_onnx, session
from edge_agent.frames import Frame
from edge_agent.runtime import build_runner
from edge_agent.runtime.anomaly import anomaly_post_process, box_to_source
from edge_agent.runtime.golden import check_golden_set
from edge_agent.runtime.model import ModelRunner
from protocol.manifest import TensorSpec, artifact_path, load_manifest
from protocol.messages import utcnow
from simulators.camera_line import CameraLine, CameraLineConfig
from simulators.mvtec import TEST_SEED_OFFSET, write_mvtec

SEED = 5
LINE = CameraLineConfig(seed=SEED, width=320, height=240)
# Measured ~0.9+ on this tiny set; 0.75 is far above chance (0.5) yet tolerant of noise.
AUROC_FLOOR = 0.75


@pytest.fixture(scope="module")
def tiny_mvtec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mvtec") / "sim"
    write_mvtec(root, LINE, 30, 10, 5, replace(LINE, seed=SEED + TEST_SEED_OFFSET))
    # calibration/good: good frames of other parts, for the threshold only.
    extra = write_mvtec(root.parent / "extra", replace(LINE, seed=SEED + 2000), 12, 0, 0)
    (root / CALIBRATION).mkdir()
    (extra / "train" / GOOD).rename(root / CALIBRATION / GOOD)
    return root


@pytest.fixture(scope="module")
def tiny_model(tiny_mvtec: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    cfg = TrainConfig(data=tiny_mvtec, out=out, seed=0, width=128, height=96, coreset=200, threads=2)
    manifest, report = train(cfg)
    assert report is not None
    return manifest


def test_tiny_model_separates_defects_well_above_chance(tiny_model: Path) -> None:
    manifest = load_manifest(tiny_model)
    assert manifest.task == "defect"
    assert manifest.labels == ("good", "anomaly")
    assert manifest.good_label == "good"
    assert manifest.thresholds["defect"] > 0
    assert manifest.metrics["image_auroc"] >= AUROC_FLOOR
    assert manifest.metrics["pixel_auroc"] >= AUROC_FLOOR


def test_evaluate_command_prints_every_figure(
    tiny_model: Path, tiny_mvtec: Path, tmp_path: Path, capsys
) -> None:
    figures = tmp_path / "eval.json"
    assert (
        main(["evaluate", "--model", str(tiny_model), "--data", str(tiny_mvtec), "--json", str(figures)]) == 0
    )
    out = capsys.readouterr().out
    for needle in ("image AUROC", "pixel AUROC", "precision", "recall", "F1", "p50", "scratch", "crack"):
        assert needle in out
    report = json.loads(figures.read_text())
    assert report["image_auroc"] >= AUROC_FLOOR
    assert set(report["per_type"]) == {"scratch", "hole", "stain", "crack"}


def test_manifest_matches_the_onnx_graph(tiny_model: Path) -> None:
    manifest = load_manifest(tiny_model)
    check_manifest_matches_onnx(tiny_model, manifest)
    assert [o.name for o in manifest.outputs] == ["score", "anomaly_map"]
    assert manifest.inputs[0].shape == ("batch", 3, 96, 128)
    runner = ModelRunner(tiny_model, slot="t")  # the gateway's own checks pass too
    assert runner.dynamic_batch


def test_manifest_that_lies_about_the_input_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    manifest = load_manifest(tiny_model)
    onnx_file = artifact_path(tiny_model, manifest)
    (tmp_path / onnx_file.name).write_bytes(onnx_file.read_bytes())
    for name in manifest.files:
        (tmp_path / name).write_bytes((tiny_model.parent / name).read_bytes())
    wrong = manifest.model_copy(update={"inputs": (TensorSpec(name="image", shape=("batch", 3, 64, 64)),)})
    lying = tmp_path / tiny_model.name
    lying.write_text(wrong.model_dump_json())
    with pytest.raises(PipelineError, match=r"input image .*\[.batch., 3, 64, 64\].*\[.batch., 3, 96, 128\]"):
        open_model(lying)


def test_golden_sample_is_reproduced_by_the_gateway_runtime(tiny_model: Path) -> None:
    manifest = load_manifest(tiny_model)
    assert manifest.golden is not None
    assert manifest.golden.input in manifest.files
    image = read_image(tiny_model.parent / manifest.golden.input)
    output = ModelRunner(tiny_model, slot="t").infer([Frame("g", "g", utcnow(), image)])[0].output
    assert output.label == manifest.golden.expected_label
    for label, expected in manifest.golden.expected_scores.items():
        assert abs(output.scores[label] - expected) <= manifest.golden.tolerance


def test_release_carries_a_golden_set_the_gateway_runtime_passes(tiny_model: Path) -> None:
    manifest = load_manifest(tiny_model)
    golden = manifest.golden_set
    assert golden is not None
    assert golden.inputs in manifest.files
    assert golden.reference_model == f"{manifest.name} {manifest.version}"
    # The tiny folder has 30 test parts (10 good, 5 of each of 4 kinds): all of them are in the set.
    assert len(golden.reference) == 30
    figures = check_golden_set(build_runner(tiny_model, "t"), tiny_model)
    assert figures.passed, figures.describe()
    assert figures.build_drift <= 1e-5
    assert figures.decisive >= 5  # clear goods and clear defects: the label check has inputs to judge


def test_agent_box_overlaps_the_true_defect_in_source_pixels(tiny_model: Path) -> None:
    runner = ModelRunner(tiny_model, slot="t")
    # Where the box goes is the promise here, not the operating point (the accuracy tests cover
    # that): a near-zero threshold makes every frame a reject so every frame gets a box.
    manifest = runner.manifest.model_copy(update={"thresholds": {"defect": 1e-6}})
    line = CameraLine(replace(LINE, seed=SEED + 777, defect_rate=1.0, defect_types=("hole", "stain")))
    frames = [line.frame(i) for i in range(8)]
    raw = runner.forward(runner.pre_process([Frame("cam", str(f.index), utcnow(), f.image) for f in frames]))
    outputs = anomaly_post_process(raw, manifest, len(frames))
    hits = 0
    for frame, output in zip(frames, outputs, strict=True):
        assert output.box is not None
        box = box_to_source(output.box, runner.preprocessing.resize, frame.image.shape)
        truth = frame.truth.box
        assert truth is not None
        overlap_x = min(box.x + box.w, truth.x + truth.w) - max(box.x, truth.x)
        overlap_y = min(box.y + box.h, truth.y + truth.h) - max(box.y, truth.y)
        hits += overlap_x > 0 and overlap_y > 0
        assert box.w * box.h < frame.image.shape[0] * frame.image.shape[1] / 4  # a region, not the frame
    assert hits >= 7, f"{hits}/8 boxes overlap the true defect"


def test_threshold_is_set_on_the_train_split_and_every_calibration_image(
    tiny_model: Path, tiny_mvtec: Path
) -> None:
    record = Calibration.read(
        tiny_model.parent / tiny_model.name.replace(".manifest.json", ".calibration.json")
    )
    extra = {f"{CALIBRATION}/{GOOD}/{p.name}" for p in (tiny_mvtec / CALIBRATION / GOOD).iterdir()}
    assert len(extra) == 12
    assert extra <= set(record.holdout)
    assert len(record.holdout) == 12 + 6  # 20% of the 30 train frames, then calibration/good
    assert record.threshold == load_manifest(tiny_model).thresholds["defect"]


def test_an_empty_calibration_folder_is_named(tmp_path: Path) -> None:
    from domain_models.anomaly.data import calibration_images

    (tmp_path / CALIBRATION / GOOD).mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"calibration/good: exists but holds no images"):
        calibration_images(tmp_path)


def test_int8_scores_are_a_near_monotone_map_of_fp32(
    tiny_model: Path, tiny_mvtec: Path, tmp_path: Path
) -> None:
    manifest, fp32_path = open_model(tiny_model)
    spec = manifest.preprocessing
    assert spec is not None
    folder = open_mvtec(tiny_mvtec)
    int8_path = build_int8(fp32_path, tmp_path / "q.onnx", list(folder.train[:16]), spec, "image")
    paths = [t.path for t in folder.test]
    fp32 = run_images(session(fp32_path), paths, spec)[0]
    int8 = run_images(session(int8_path), paths, spec)[0]
    assert spearman(fp32, int8) >= 0.9
    assert not np.allclose(fp32, int8)  # it was quantized


def test_int8_passes_a_tolerance_this_folder_resolves(
    tiny_model: Path, tiny_mvtec: Path, tmp_path: Path
) -> None:
    # 30 test images resolve a drop to about +-10 points, not 1: a 25-point tolerance exercises
    # the release path; the bundled model's 1-point gate is tested on its 600 test images.
    result = quantize_model(tiny_model, tiny_mvtec, tolerance=25.0, out=tmp_path, calib_images=16, draws=300)
    assert result.passed, [c.describe() for c in result.checks]
    assert result.manifest is not None
    int8 = load_manifest(result.manifest)
    check_manifest_matches_onnx(result.manifest, int8)
    assert int8.lineage is not None
    assert int8.lineage.parent_version == "1.0.0"
    folder = open_mvtec(tiny_mvtec)
    spec = int8.preprocessing
    assert spec is not None
    fp32 = evaluate_onnx(artifact_path(tiny_model, load_manifest(tiny_model)), spec, 1e9, folder)
    q = evaluate_onnx(artifact_path(result.manifest, int8), spec, int8.thresholds["defect"], folder)
    assert abs(fp32.image_auroc - q.image_auroc) <= 0.05
    # The INT8 release's golden set holds the FP32 parent's outputs: the gateway checks the
    # quantization itself on its CPU, and here it passes as the gate did.
    assert int8.golden_set is not None
    assert int8.golden_set.reference_model == "defect-patchcore 1.0.0"
    assert int8.golden_set.min_rank_correlation == 0.95
    figures = check_golden_set(build_runner(result.manifest, "t"), result.manifest)
    assert figures.passed, figures.describe()


def test_gate_refuses_an_impossible_tolerance_and_writes_nothing(
    tiny_model: Path, tiny_mvtec: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "int8"
    code = main(
        [
            "quantize",
            "defect",
            "--model",
            str(tiny_model),
            "--data",
            str(tiny_mvtec),
            "--tolerance",
            "-100",
            "--out",
            str(out),
            "--calib-images",
            "8",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "refused, drop exceeds -100" in captured.err
    assert "FP32" in captured.out
    assert "INT8" in captured.out
    assert not out.exists() or not list(out.glob("*.onnx"))


def test_a_test_set_too_small_for_one_point_is_refused_with_the_figure_it_needs(
    tiny_model: Path, tiny_mvtec: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "int8"
    args = ["quantize", "defect", "--model", str(tiny_model), "--data", str(tiny_mvtec), "--out", str(out)]
    code = main([*args, "--calib-images", "8"])
    captured = capsys.readouterr()
    assert code == 1
    assert "CANNOT RESOLVE 1.00 point(s)" in captured.out
    match = re.search(
        r"cannot resolve 1.0 point\(s\).*about (\d+) good and (\d+) defective in all", captured.err
    )
    assert match, captured.err
    assert int(match.group(1)) > 10
    assert int(match.group(2)) > 20
    assert not out.exists() or not list(out.glob("*.onnx"))


def test_export_packages_a_verified_release(tiny_model: Path, tmp_path: Path) -> None:
    assert main(["export", "defect", "--model", str(tiny_model), "--out", str(tmp_path)]) == 0
    copied = load_manifest(tmp_path / tiny_model.name)  # sizes and hashes verified again
    assert copied.sha256 == load_manifest(tiny_model).sha256


def test_anomaly_map_is_hot_where_the_mask_is(tiny_model: Path, tiny_mvtec: Path) -> None:
    manifest, onnx_path = open_model(tiny_model)
    folder = open_mvtec(tiny_mvtec)
    spec = manifest.preprocessing
    assert spec is not None
    report = evaluate_onnx(onnx_path, spec, manifest.thresholds["defect"], folder)
    assert report.pixel_auroc is not None
    assert report.pixel_auroc >= AUROC_FLOOR
    assert np.isfinite(report.p50_ms)
