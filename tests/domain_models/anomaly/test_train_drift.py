"""Training attaches a drift reference from its own held-out good images, and the builder's
``--held-out`` mode reproduces it from the calibration record (how the bundled releases got theirs)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from domain_models import drift_reference
from domain_models.anomaly.data import CALIBRATION, GOOD
from domain_models.anomaly.train import TrainConfig, train
from protocol.drift import IMAGE_SIGNALS, SCORE_SIGNAL
from protocol.manifest import load_manifest
from simulators.camera_line import CameraLineConfig
from simulators.mvtec import write_mvtec

LINE = CameraLineConfig(seed=31, width=320, height=240)
TRAIN_GOOD, CALIBRATION_GOOD = 20, 76  # 5 of train/good held out + 76 = 81 held-out good images


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    data = tmp_path_factory.mktemp("mvtec") / "sim"
    write_mvtec(data, LINE, TRAIN_GOOD, 0, 0)
    extra = write_mvtec(data.parent / "extra", replace(LINE, seed=LINE.seed + 2000), CALIBRATION_GOOD, 0, 0)
    (data / CALIBRATION).mkdir()
    (extra / "train" / GOOD).rename(data / CALIBRATION / GOOD)
    out = tmp_path_factory.mktemp("model")
    cfg = TrainConfig(data=data, out=out, seed=3, width=128, height=96, coreset=100, threads=2)
    manifest, _ = train(cfg)
    return manifest, data


@pytest.mark.slow
def test_a_trained_release_carries_a_drift_reference_from_its_held_out_images(
    trained: tuple[Path, Path],
) -> None:
    manifest_path, _ = trained
    drift = load_manifest(manifest_path).drift  # verified like any release
    assert drift is not None
    assert tuple(drift.signals) == (*IMAGE_SIGNALS, SCORE_SIGNAL)
    assert (drift.reference_frames, drift.calibration_frames) == (41, 40)  # 81 alternated
    assert drift.signals[SCORE_SIGNAL].statistic == "bulk"
    assert all(s.statistic == "ks" for n, s in drift.signals.items() if n != SCORE_SIGNAL)
    assert all(drift_reference.MIN_THRESHOLD <= s.threshold <= 1.0 for s in drift.signals.values())
    assert (drift.window, drift.step) == (drift_reference.WINDOW, drift_reference.STEP)


@pytest.mark.slow
def test_the_builder_reproduces_the_reference_from_the_calibration_record(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    manifest_path, data = trained
    copy = tmp_path / "release"
    copy.mkdir()
    for path in manifest_path.parent.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    manifest = copy / manifest_path.name
    written = json.loads(manifest.read_text())
    del written["drift"]
    manifest.write_text(json.dumps(written))
    assert load_manifest(manifest).drift is None

    assert drift_reference.main(["--model", str(manifest), "--held-out", str(data)]) == 0
    assert load_manifest(manifest).drift == load_manifest(manifest_path).drift


def test_too_few_held_out_images_give_no_reference() -> None:
    paths = [Path(f"{i}.png") for i in range(2 * drift_reference.MIN_FRAMES)]
    assert drift_reference.split_held_out(paths[:-1]) is None
    split = drift_reference.split_held_out(paths)
    assert split is not None
    assert (len(split[0]), len(split[1])) == (drift_reference.MIN_FRAMES, drift_reference.MIN_FRAMES)
    assert not set(split[0]) & set(split[1])
