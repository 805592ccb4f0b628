"""``factory-models calibrate parcels``: mm_per_px from a capture of a reference box, and sizes
measured right once the gateway runs with it."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from domain_models.cli import main
from domain_models.parcels.commands import SHIPPED
from edge_agent.frames import Frame
from edge_agent.runtime.parcel_routes import ParcelLineSettings
from edge_agent.runtime.parcels import ParcelRunner
from protocol.messages import ParcelOutput, utcnow
from simulators.parcel_line import ParcelLine, ParcelLineConfig

# The measured factor may be off by this share: a box edge is found to about a pixel, and the
# median over frames of a 400 x 300 mm box (~470 px of sides) keeps well inside it.
SCALE_TOLERANCE = 0.02
# Parcel lengths measured with the new factor: within this share of the truth (median over parcels).
SIZE_TOLERANCE = 0.03


def _calibrate(capture: Path, capsys: pytest.CaptureFixture[str], *box: str) -> tuple[int, str, str]:
    code = main(["calibrate", "parcels", "--data", str(capture), "--box-mm", *box])
    out, err = capsys.readouterr()
    return code, out, err


def _measured(out: str) -> float:
    found = re.search(r"^mm_per_px (\d+\.\d+)$", out, re.MULTILINE)
    assert found, out
    return float(found.group(1))


def test_a_reference_box_under_a_moved_camera_gives_its_new_mm_per_px(
    reference_box_capture: tuple[Path, float], capsys: pytest.CaptureFixture[str]
) -> None:
    capture, true_mm_per_px = reference_box_capture
    code, out, _ = _calibrate(capture, capsys, "400", "300")
    assert code == 0, out
    assert _measured(out) == pytest.approx(true_mm_per_px, rel=SCALE_TOLERANCE)
    used = int(re.search(r"frames used (\d+)", out).group(1))  # type: ignore[union-attr]
    assert used >= 10
    assert "several boxes" in out  # frames with two boxes in view were rejected, not averaged
    assert re.search(r"parcels:\n\s+mm_per_px: \d+\.\d{4}\n", out), out  # how to apply it


def test_the_box_sides_may_be_given_in_either_order(
    reference_box_capture: tuple[Path, float], capsys: pytest.CaptureFixture[str]
) -> None:
    capture, _ = reference_box_capture
    _, first, _ = _calibrate(capture, capsys, "400", "300")
    _, second, _ = _calibrate(capture, capsys, "300", "400")
    assert _measured(first) == _measured(second)


def _length_errors(mm_per_px: float, camera_mm_per_px: float) -> list[float]:
    """Relative length error of each parcel the gateway's runner counts on a line whose camera sees
    ``camera_mm_per_px``, run with ``mm_per_px`` in its config (boxes of every size of the line)."""
    runner = ParcelRunner(SHIPPED, "parcels", line=ParcelLineSettings(mm_per_px=mm_per_px))
    line = ParcelLine(ParcelLineConfig(seed=11, mm_per_px=camera_mm_per_px, damage_rate=0.0))
    errors: list[float] = []
    for index in range(100):
        frame = line.frame(index)
        for p in runner.infer([Frame("belt", str(index), utcnow(), frame.image)]):
            out = p.output
            assert isinstance(out, ParcelOutput)
            centre = (out.box.x + out.box.w / 2, out.box.y + out.box.h / 2)
            truth = min(
                frame.truth.parcels, key=lambda t: np.hypot(t.center[0] - centre[0], t.center[1] - centre[1])
            )
            errors.append(out.length_mm / truth.length_mm - 1.0)
    assert len(errors) >= 5
    return errors


def test_sizes_are_right_after_applying_the_measured_mm_per_px(
    reference_box_capture: tuple[Path, float], capsys: pytest.CaptureFixture[str]
) -> None:
    capture, camera = reference_box_capture
    _, out, _ = _calibrate(capture, capsys, "400", "300")
    measured = _measured(out)
    calibrated = _length_errors(measured, camera)
    assert abs(float(np.median(calibrated))) < SIZE_TOLERANCE, calibrated
    # Lengths are pixels times the factor: with the release's 1.25 mm/px the same parcels would
    # measure about a sixth short, so the check above tells a calibrated line from a stale one.
    stale = [(1.0 + e) * 1.25 / measured - 1.0 for e in calibrated]
    assert float(np.median(stale)) < -0.10, stale


def test_a_folder_without_images_is_refused_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _calibrate(tmp_path, capsys, "400", "300")
    assert (code, out) == (2, "")
    assert f"{tmp_path}: no images" in err


def test_frames_without_the_box_are_refused_naming_what_was_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    belt = ParcelLine(ParcelLineConfig(seed=3)).frame(0).image * 0 + 90  # an empty grey belt
    for i in range(6):
        cv2.imwrite(str(tmp_path / f"{i}.png"), belt)
    code, _, err = _calibrate(tmp_path, capsys, "400", "300")
    assert code == 2
    assert "only 0 frame(s)" in err
    assert "6 no box found" in err


def test_bad_box_sizes_and_other_domains_are_refused(
    reference_box_capture: tuple[Path, float], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _calibrate(reference_box_capture[0], capsys, "400", "0")
    assert code == 2
    assert "sides must be > 0 mm" in err
    (tmp_path / "x.png").write_bytes(b"not a png")
    code, _, err = _calibrate(tmp_path, capsys, "400", "300")
    assert code == 2
    assert "x.png: not a readable image" in err
    assert main(["calibrate", "defect", "--data", str(tmp_path)]) == 2
    assert "only for parcels" in capsys.readouterr().err
