"""Finding the part in a frame from the picture alone: on the simulated camera line, against either
belt, light or dark, with rails along the belt, a hole in the part, or two parts in view."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_agent.part_finder import find_part
from protocol.messages import Box
from simulators.camera_line import CameraLine, CameraLineConfig
from simulators.defects import Box as SimBox

TRAINED = CameraLineConfig(seed=5, defect_rate=1.0)


def _iou(a: Box, b: Box) -> float:
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    inter = max(w, 0) * max(h, 0)
    return inter / (a.w * a.h + b.w * b.h - inter)


def _wire(box: SimBox | None) -> Box:
    assert box is not None
    return Box(x=box.x, y=box.y, w=box.w, h=box.h)


def _belt(value: int = 55, rails: int | None = 150, size: tuple[int, int] = (480, 640)) -> np.ndarray:
    """A plain belt with a little texture (ribs) and, by default, bright rails along it."""
    image = np.full((*size, 3), value, np.uint8)
    image[:, ::12] = value + 8
    if rails is not None:
        image[: size[0] // 14], image[-size[0] // 14 :] = rails, rails
    return image


@pytest.mark.parametrize("config", [TRAINED, TRAINED.unseen_appearance()], ids=["ribbed", "mesh-warm"])
def test_the_part_under_each_simulated_defect_is_found_whole(config: CameraLineConfig) -> None:
    line = CameraLine(config)
    for index in range(30):
        frame = line.frame(index)
        found = find_part(frame.image, _wire(frame.truth.box))
        assert found is not None, f"frame {index}: no part found"
        truth = _wire(frame.truth.part_box)
        assert _iou(found, truth) > 0.85, f"frame {index} ({frame.truth.part}): found {found}, truth {truth}"


def test_a_hole_in_the_part_is_part_of_it_and_a_dark_part_on_a_light_belt_is_found() -> None:
    image = _belt(value=200, rails=None)
    cv2.circle(image, (320, 240), 120, (60, 60, 60), -1)
    cv2.circle(image, (280, 220), 15, (200, 200, 200), -1)  # a hole: the belt shows through
    found = find_part(image, Box(x=262, y=202, w=36, h=36))
    assert found is not None
    assert _iou(found, Box(x=200, y=120, w=241, h=241)) > 0.9


def test_rails_along_the_belt_are_no_part_even_where_the_part_touches_one() -> None:
    image = _belt()
    cv2.rectangle(image, (250, 20), (420, 300), (170, 170, 170), -1)  # reaches into the top rail
    found = find_part(image, Box(x=300, y=200, w=20, h=20))
    assert found is not None
    assert found.w < 200, f"the rail was taken for the part: {found}"
    assert _iou(found, Box(x=250, y=20, w=171, h=281)) > 0.8


def test_the_box_picks_its_own_part_and_without_one_the_largest_clear_part_wins() -> None:
    image = _belt()
    cv2.rectangle(image, (60, 150), (200, 290), (180, 180, 180), -1)
    cv2.rectangle(image, (300, 100), (560, 380), (180, 180, 180), -1)
    small = find_part(image, Box(x=100, y=200, w=20, h=20))
    assert small is not None
    assert _iou(small, Box(x=60, y=150, w=141, h=141)) > 0.9
    large = find_part(image)
    assert large is not None
    assert _iou(large, Box(x=300, y=100, w=261, h=281)) > 0.9


def test_a_frame_where_nothing_stands_out_from_the_belt_has_no_part() -> None:
    assert find_part(_belt()) is None
    assert find_part(_belt(rails=None), Box(x=10, y=10, w=5, h=5)) is None
    assert find_part(np.empty((0,), np.uint8)) is None  # a text source's frame has no picture
