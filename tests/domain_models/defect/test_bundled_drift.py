"""The bundled CNN's drift reference (the neutral look of its line) on lines it was not calibrated
on: a new belt and light is confirmed within a few steps, an unchanged line raises nothing.

Seeds: the reference comes from seeds 4007 and 5007, the figures in docs/drift.md from seeds
6007-6010; these tests use 7021 and 7023, used by neither (nor by training: 7, 507, 1007-3007).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import domain_models.defect
from domain_models.drift import check
from simulators.camera_line import CameraLineConfig
from simulators.line_frames import LineFrames

MANIFEST = Path(domain_models.defect.__file__).parent / "artifacts" / "defect-cnn-1.0.0.manifest.json"
BEFORE, CONFIRMED_WITHIN = 100, 80  # measured: confirmed 60 frames after the change


@pytest.mark.slow
def test_a_new_belt_and_light_is_confirmed_within_80_frames() -> None:
    line = CameraLineConfig(seed=7023)
    result = check(MANIFEST, LineFrames((line, 0, BEFORE), (line.unseen_appearance(), 0, CONFIRMED_WITHIN)))
    confirmed = [n for n, e in result.transitions if e.transition == "confirmed"]
    assert confirmed, [(n, e.describe()) for n, e in result.transitions]
    assert BEFORE < confirmed[0] <= BEFORE + CONFIRMED_WITHIN
    assert result.last.cause == "look"


@pytest.mark.slow
def test_an_unchanged_line_with_its_usual_defects_raises_nothing_over_600_frames() -> None:
    result = check(MANIFEST, LineFrames((CameraLineConfig(seed=7021), 0, 600)))
    assert result.transitions == (), [(n, e.describe()) for n, e in result.transitions]
    assert result.last.flagged_share > 0.1  # the CNN flags most of the line's 20% defective parts
