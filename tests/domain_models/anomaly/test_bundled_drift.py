"""The bundled anomaly releases' drift references on lines they were not calibrated on: a new belt
and light is confirmed within a few steps, an unchanged line and a burst of defects are not drift.

Seeds: the references come from the bundle's held-out good frames (seeds 11 and 2011), the
figures in docs/drift.md from seeds 4011-4017; these tests use 7011-7013, used by neither.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import domain_models.anomaly
from domain_models.drift import check
from simulators.camera_line import CameraLineConfig
from simulators.line_frames import LineFrames

ARTIFACTS = Path(domain_models.anomaly.__file__).parent / "artifacts"
FP32 = ARTIFACTS / "defect-patchcore-1.1.0.manifest.json"
INT8 = ARTIFACTS / "defect-patchcore-int8-1.1.0.manifest.json"
UNCHANGED_SEED, BURST_SEED, LOOK_SEED = 7011, 7012, 7013
BEFORE = 100  # frames of the usual look before the change
# Measured on seeds 4011-4017: confirmed 60 frames after the change (3 evaluations 20 frames
# apart, the first once 20 frames of the new look are in). One evaluation more is allowed.
CONFIRMED_WITHIN = 80


@pytest.mark.slow
@pytest.mark.parametrize("manifest", [FP32, INT8], ids=["fp32", "int8"])
def test_a_new_belt_and_light_is_confirmed_within_80_frames(manifest: Path) -> None:
    line = CameraLineConfig(seed=LOOK_SEED)
    result = check(manifest, LineFrames((line, 0, BEFORE), (line.unseen_appearance(), 0, CONFIRMED_WITHIN)))
    confirmed = [n for n, e in result.transitions if e.transition == "confirmed"]
    assert confirmed, [(n, e.describe()) for n, e in result.transitions]
    assert BEFORE < confirmed[0] <= BEFORE + CONFIRMED_WITHIN
    assert result.drift
    assert result.last.cause == "look"
    assert {"brightness", "warmth"} <= set(result.last.moved)


@pytest.mark.slow
def test_an_unchanged_line_with_its_usual_defects_raises_nothing_over_600_frames() -> None:
    line = CameraLineConfig(seed=UNCHANGED_SEED)  # 20% defective parts, as the demo's lines run
    result = check(FP32, LineFrames((line, 0, 600)))
    assert result.transitions == (), [(n, e.describe()) for n, e in result.transitions]
    assert result.last.state == "ok"
    assert result.last.flagged_share > 0.05  # the usual defects are there, and flagged


@pytest.mark.slow
def test_a_burst_of_defects_is_not_drift() -> None:
    line = CameraLineConfig(seed=BURST_SEED)
    burst = replace(line, defect_rate=0.5)
    result = check(FP32, LineFrames((line, 0, BEFORE), (burst, BEFORE, 200)))
    assert not [n for n, e in result.transitions if e.transition == "confirmed"]
    # The burst is seen (the model flags about half the defective parts; 1% of good ones at fit
    # time), but neither the look nor the bulk of the scores moved.
    assert result.last.flagged_share >= 0.15
    assert result.last.moved == ()
