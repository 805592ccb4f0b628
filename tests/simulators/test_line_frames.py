"""LineFrames: lines' frames as one sequence, rendered on access, each the line's own frame."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.camera_line import CameraLine, CameraLineConfig
from simulators.line_frames import LineFrames

SMALL = CameraLineConfig(seed=3, width=160, height=120)


def test_parts_follow_each_other_and_each_frame_is_the_line_s_own() -> None:
    other = SMALL.unseen_appearance()
    frames = LineFrames((SMALL, 10, 2), (other, 0, 3))
    assert len(frames) == 5
    assert np.array_equal(frames[1], CameraLine(SMALL).frame(11).image)
    assert np.array_equal(frames[2], CameraLine(other).frame(0).image)
    assert np.array_equal(frames[-1], CameraLine(other).frame(2).image)
    assert [f.shape for f in frames[3:]] == [(120, 160, 3)] * 2


def test_frames_pass_through_the_given_function() -> None:
    inverted = LineFrames((SMALL, 0, 1), through=lambda image: 255 - image)
    assert np.array_equal(inverted[0], 255 - CameraLine(SMALL).frame(0).image)


def test_reading_past_the_end_or_a_negative_start_is_refused() -> None:
    frames = LineFrames((SMALL, 0, 2))
    with pytest.raises(IndexError, match="frame 2 of 2"):
        frames[2]
    with pytest.raises(ValueError, match="start and count must be >= 0"):
        LineFrames((SMALL, -1, 2))
