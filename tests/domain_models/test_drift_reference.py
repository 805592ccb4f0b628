"""Attaching a drift reference to an existing release: the manifest gains it and nothing else
changes, the thresholds come from the calibration set, and bad sets are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain_models.common import PipelineError
from domain_models.drift_reference import MIN_FRAMES, MIN_THRESHOLD, WINDOWS, attach, main
from protocol.drift import IMAGE_SIGNALS, SCORE_SIGNAL
from protocol.manifest import load_manifest
from simulators.camera_line import CameraLineConfig
from simulators.line_frames import LineFrames
from tests.support.agent import build_model
from tests.support.drift import write_frames

SMALL = CameraLineConfig(seed=7201, width=160, height=120, defect_rate=0.0)


def test_attach_adds_the_reference_and_changes_nothing_else(tmp_path: Path) -> None:
    manifest = build_model(tmp_path / "model")
    before = load_manifest(manifest)
    drift = attach(manifest, LineFrames((SMALL, 0, MIN_FRAMES)), LineFrames((SMALL, 100, MIN_FRAMES)))
    after = load_manifest(manifest)  # still verifies: the artifact is untouched
    assert after.drift == drift
    assert after.model_dump(exclude={"drift"}) == before.model_dump(exclude={"drift"})
    assert tuple(drift.signals) == (*IMAGE_SIGNALS, SCORE_SIGNAL)
    assert drift.calibration_windows == WINDOWS
    assert (drift.reference_frames, drift.calibration_frames) == (MIN_FRAMES, MIN_FRAMES)
    assert all(MIN_THRESHOLD <= s.threshold <= 1.0 for s in drift.signals.values())


def test_a_set_too_small_is_refused_naming_it(tmp_path: Path) -> None:
    manifest = build_model(tmp_path / "model")
    with pytest.raises(
        PipelineError, match=f"drift calibration set: {MIN_FRAMES - 1} inputs, at least {MIN_FRAMES}"
    ):
        attach(manifest, LineFrames((SMALL, 0, MIN_FRAMES)), LineFrames((SMALL, 100, MIN_FRAMES - 1)))
    assert load_manifest(manifest).drift is None


def test_texts_for_an_image_model_are_refused(tmp_path: Path) -> None:
    manifest = build_model(tmp_path / "model")
    with pytest.raises(PipelineError, match="takes images as its drift reference set"):
        attach(manifest, ["a note"] * MIN_FRAMES, ["a note"] * MIN_FRAMES)


def test_the_command_line_reads_two_folders_and_names_a_missing_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = build_model(tmp_path / "model")
    reference = write_frames(tmp_path / "reference", LineFrames((SMALL, 0, MIN_FRAMES)))
    calibration = write_frames(tmp_path / "calibration", LineFrames((SMALL, 100, MIN_FRAMES)))
    args = ["--model", str(manifest), "--reference", str(reference)]
    assert main([*args, "--calibration", str(tmp_path / "nope")]) == 1
    assert f"{tmp_path / 'nope'}: not a folder" in capsys.readouterr().err
    assert main([*args, "--calibration", str(calibration)]) == 0
    assert "drift reference attached" in capsys.readouterr().out
    assert load_manifest(manifest).drift is not None
