"""The supervised type head of the few-shot anomaly model, on a tiny generated MVTec folder.

train/good has 30 good frames and train/{crack,hole,stain} 8 labelled defects each; scratch is
held out of training entirely (an unseen kind). test/ holds other parts of every kind, never
fitted on. One model is trained through the CLI per module (128x96 input, 200-patch coreset).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from domain_models.anomaly.card import type_section
from domain_models.anomaly.data import GOOD, DatasetError, open_mvtec, read_image
from domain_models.anomaly.evaluate import open_model
from domain_models.anomaly.labelled import MIN_PER_TYPE, find_labelled
from domain_models.anomaly.quantize import quantize_model
from domain_models.anomaly.type_eval import TypeReport, evaluate_types
from domain_models.cli import main
from edge_agent.frames import Frame
from edge_agent.runtime.anomaly import anomaly_post_process
from edge_agent.runtime.model import ModelRunner
from protocol.inference import TYPE_OUTPUT
from protocol.manifest import ModelManifest, load_manifest
from protocol.messages import DefectOutput, utcnow
from simulators.camera_line import CameraLineConfig
from simulators.mvtec import TEST_SEED_OFFSET, write_mvtec

SEED = 5
LINE = CameraLineConfig(seed=SEED, width=320, height=240)
KNOWN = ("crack", "hole", "stain")
UNSEEN = "scratch"
# Measured 0.875 on 16 flagged known-type test defects (chance 1/3); 0.6 is well above chance
# yet leaves room for a couple of the tiny set's parts to move.
TYPE_ACCURACY_FLOOR = 0.6


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sup") / "sim"
    write_mvtec(root, LINE, 30, 10, 8, replace(LINE, seed=SEED + TEST_SEED_OFFSET), train_per_type=8)
    shutil.rmtree(root / "train" / UNSEEN)  # the held-out kind: in test/, never labelled
    return root


@pytest.fixture(scope="module")
def trained(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("sup-model")
    args = ["train", "defect", "--data", str(folder), "--out", str(out), "--width", "128", "--height", "96"]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main([*args, "--coreset", "200"]) == 0
    return out / "defect-patchcore-1.0.0.manifest.json", stdout.getvalue()


@pytest.fixture(scope="module")
def report(trained: tuple[Path, str], folder: Path) -> TypeReport:
    manifest, onnx_path = open_model(trained[0])
    return evaluate_types(onnx_path, manifest, open_mvtec(folder, min_train=0))


def test_train_reports_the_labelled_defects_and_writes_their_labels(trained: tuple[Path, str]) -> None:
    manifest_path, out = trained
    assert "type head: 24 labelled defects of 3 type(s) (crack 8, hole 8, stain 8)" in out
    assert "type accuracy on" in out
    assert "unseen scratch" in out
    manifest = load_manifest(manifest_path)
    assert manifest.labels == ("good", "anomaly", *KNOWN)
    assert [o.name for o in manifest.outputs] == ["score", "anomaly_map", TYPE_OUTPUT]
    assert manifest.thresholds["type"] == 0.5
    assert manifest.thresholds["type_flag"] == 0.9


def test_evaluate_command_prints_and_writes_the_type_figures(
    trained: tuple[Path, str], folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = tmp_path / "eval.json"
    assert main(["evaluate", "--model", str(trained[0]), "--data", str(folder), "--json", str(figures)]) == 0
    out = capsys.readouterr().out
    assert "confusion (true kind -> reported label)" in out
    assert "if the head also flagged" in out
    types = json.loads(figures.with_suffix(".types.json").read_text())
    assert set(types["per_type"]) == set(KNOWN)
    assert types["unseen"][UNSEEN]["count"] == 8


def test_type_of_held_out_defects_is_named_well_above_chance(report: TypeReport) -> None:
    assert report.types == KNOWN
    assert report.flagged_known >= 6, "too few flagged test defects to judge the head"
    assert report.type_accuracy >= TYPE_ACCURACY_FLOOR
    # Every known kind that the threshold flagged shows up in the confusion matrix's rows.
    assert sum(report.confusion[GOOD].values()) == 10
    assert all(0.0 <= f.precision <= 1.0 and 0.0 <= f.recall <= 1.0 for f in report.per_type.values())


def test_unseen_kind_is_still_flagged_and_the_head_never_clears_a_flag(report: TypeReport) -> None:
    unseen = report.unseen[UNSEEN]
    assert unseen.count == 8
    assert unseen.flagged_without_head > 0
    assert unseen.flagged_with_head >= unseen.flagged_without_head
    # The gateway's decision is the rule evaluate measured at type probability >= 0.9.
    assert (report.f1_with_head, report.false_rejects_with_head) == report.head_flag_sweep["0.90"]


def test_without_type_flag_the_threshold_alone_decides(trained: tuple[Path, str], folder: Path) -> None:
    manifest, onnx_path = open_model(trained[0])
    off = _without_type_flag(manifest)
    report = evaluate_types(onnx_path, off, open_mvtec(folder, min_train=0))
    unseen = report.unseen[UNSEEN]
    assert unseen.flagged_with_head == unseen.flagged_without_head > 0
    assert report.f1_with_head == report.f1_without_head
    assert report.false_rejects_with_head == report.false_rejects_without_head
    # Every flagged unseen part is reported as 'anomaly' or as a known type, never as good.
    n_flagged = round(unseen.flagged_with_head * unseen.count)
    anomaly = report.confusion[UNSEEN].get("anomaly", 0)
    assert anomaly + sum(report.confusion[UNSEEN].get(t, 0) for t in KNOWN) == n_flagged
    assert unseen.labelled_anomaly == pytest.approx(anomaly / n_flagged)


def test_agent_runtime_passes_the_type_through(trained: tuple[Path, str], folder: Path) -> None:
    runner = ModelRunner(trained[0], slot="t")
    frames = [
        Frame("cam", p.name, utcnow(), read_image(p))
        for kind in (*KNOWN, UNSEEN)
        for p in sorted((folder / "test" / kind).iterdir())
    ]
    raw = [p.output for p in runner.infer(frames)]
    outputs = [o for o in raw if isinstance(o, DefectOutput)]
    assert len(outputs) == len(frames)
    labels = {o.label for o in outputs if o.is_defect}
    assert labels & set(KNOWN), f"no flagged part was named with a type: {labels}"
    for o in outputs:
        assert o.label in runner.manifest.labels
        assert set(KNOWN) <= set(o.scores)  # the head's probabilities travel with the result
        assert o.is_defect == (o.label != GOOD)


def _without_type_flag(manifest: ModelManifest) -> ModelManifest:
    thresholds = {k: v for k, v in manifest.thresholds.items() if k != "type_flag"}
    return manifest.model_copy(update={"thresholds": thresholds})


def _outputs(threshold: float, probs: list[list[float]]) -> list[np.ndarray]:
    n = len(probs)
    amap = np.zeros((n, 12, 16), np.float32)
    amap[:, 5, 5] = threshold * 2
    scores = np.array([threshold * 2, threshold * 2, threshold / 2][:n], np.float32)
    return [scores, amap, np.array(probs, np.float32)]


def test_unsure_type_stays_anomaly_and_unflagged_parts_stay_good(trained: tuple[Path, str]) -> None:
    manifest = load_manifest(trained[0])
    t = manifest.thresholds["defect"]
    probs = [[0.0, 0.05, 0.9, 0.05], [0.1, 0.4, 0.3, 0.2], [0.0, 0.0, 0.99, 0.01]]
    sure, unsure, below = anomaly_post_process(_outputs(t, probs), _without_type_flag(manifest), 3)
    assert (sure.label, sure.is_defect) == ("hole", True)
    assert (unsure.label, unsure.is_defect) == ("anomaly", True)
    assert (below.label, below.is_defect) == (GOOD, False)
    # With thresholds["type_flag"] (0.9 by default) a confident head flags a part below the threshold.
    flagged = anomaly_post_process(_outputs(t, probs), manifest, 3)[2]
    assert (flagged.label, flagged.is_defect, flagged.box is not None) == ("hole", True, True)
    probs[2] = [0.15, 0.0, 0.85, 0.0]  # under type_flag: stays good
    assert anomaly_post_process(_outputs(t, probs), manifest, 3)[2].label == GOOD


def test_a_type_output_of_the_wrong_width_is_named(trained: tuple[Path, str]) -> None:
    manifest = load_manifest(trained[0])
    with pytest.raises(ValueError, match=r"defect_type has shape \(1, 3\), expected \(1, 4\)"):
        anomaly_post_process(_outputs(1.0, [[0.2, 0.4, 0.4]])[:3], manifest, 1)


def test_int8_keeps_the_head_in_fp32_and_its_labels(
    trained: tuple[Path, str], folder: Path, tmp_path: Path
) -> None:
    # A wide tolerance: this checks the path, not the gate (the pipeline tests check the gate).
    result = quantize_model(trained[0], folder, tolerance=50.0, out=tmp_path, draws=200)
    assert result.manifest is not None, result.reason()
    int8 = load_manifest(result.manifest)
    assert int8.labels == ("good", "anomaly", *KNOWN)
    assert int8.thresholds["type"] == 0.5
    graph = onnx.load(str(tmp_path / int8.artifact)).graph
    quantized = {n.name for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")}
    assert quantized
    assert not any("type_head" in name for name in quantized)
    report = evaluate_types(tmp_path / int8.artifact, int8, open_mvtec(folder, min_train=0))
    assert report.type_accuracy >= TYPE_ACCURACY_FLOOR


def test_card_section_appears_only_with_a_head(report: TypeReport) -> None:
    text = type_section(report)
    assert "## Defect types (supervised head)" in text
    assert "| scratch |" in text
    assert type_section(None) == ""


def _labelled(tmp_path: Path, counts: dict[str, int]) -> Path:
    root = tmp_path / "labelled"
    image = np.full((24, 32, 3), 128, np.uint8)
    for kind, n in counts.items():
        (root / kind).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(root / kind / f"{i}.png"), image)
    return root


def test_a_type_with_too_few_images_is_named(tmp_path: Path) -> None:
    root = _labelled(tmp_path, {"hole": 5, "dent": MIN_PER_TYPE - 1})
    with pytest.raises(
        DatasetError, match=rf"dent: 2 labelled image\(s\) of 'dent', at least {MIN_PER_TYPE}"
    ):
        find_labelled(tmp_path, root)


def test_an_unreadable_labelled_image_is_named(tmp_path: Path) -> None:
    root = _labelled(tmp_path, {"hole": 4})
    (root / "hole" / "9.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"cannot read image .*hole/9\.png"):
        find_labelled(tmp_path, root)


def test_reserved_or_malformed_type_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"'anomaly' cannot be a defect type"):
        find_labelled(tmp_path, _labelled(tmp_path / "a", {"anomaly": 4}))
    with pytest.raises(DatasetError, match=r"'bad name' is not a usable label"):
        find_labelled(tmp_path, _labelled(tmp_path / "b", {"bad name": 4}))


def test_cli_names_a_bad_labelled_folder_and_a_missing_one(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _labelled(tmp_path, {"dent": 1})
    base = ["train", "defect", "--data", str(folder), "--out", str(tmp_path / "m")]
    assert main([*base, "--labelled", str(bad)]) == 2
    assert "dent: 1 labelled image(s)" in capsys.readouterr().err
    assert main([*base, "--labelled", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: not a folder" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()  # refused before any training


def test_labelled_flag_may_point_outside_the_data_folder(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "labelled"
    for kind in ("hole", "stain"):
        shutil.copytree(folder / "train" / kind, elsewhere / kind)
    out = tmp_path / "m"
    args = [
        "--width",
        "64",
        "--height",
        "48",
        "--coreset",
        "50",
        "--labelled",
        str(elsewhere),
        "--type-flag",
        "off",
    ]
    assert main(["train", "defect", "--data", str(folder), "--out", str(out), *args]) == 0
    assert f"16 labelled defects of 2 type(s) (hole 8, stain 8) from {elsewhere}" in capsys.readouterr().out
    manifest = load_manifest(out / "defect-patchcore-1.0.0.manifest.json")
    assert manifest.labels == ("good", "anomaly", "hole", "stain")
    assert "type_flag" not in manifest.thresholds


def test_a_folder_without_labelled_defects_has_no_head(folder: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    (plain / "train").mkdir(parents=True)
    shutil.copytree(folder / "train" / GOOD, plain / "train" / GOOD)
    assert find_labelled(plain) is None
    found = find_labelled(folder)
    assert found is not None
    assert found.types == KNOWN
    assert {t: len(v) for t, v in found.by_type.items()} == dict.fromkeys(KNOWN, 8)
