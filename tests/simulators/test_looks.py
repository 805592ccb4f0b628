"""A line's looks: frame i in look L is a pure function of (config, i, L), a look changes only the
appearance (the same parts, defects and parcels), and a switch takes effect at the next frame."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from simulators.camera_line import CameraLine, CameraLineConfig
from simulators.looks import LOOKS, LookError, SwitchableLine, camera_look, parcel_look
from simulators.parcel_line import ParcelLineConfig

SMALL = CameraLineConfig(seed=21, width=320, height=240, defect_rate=0.5)


def _channel_means(image: np.ndarray) -> tuple[float, float, float]:
    blue, green, red = (float(image[..., c].mean()) for c in range(3))
    return blue, green, red


def test_frames_are_a_pure_function_of_index_and_look_whatever_came_before() -> None:
    one, other = SwitchableLine.camera(SMALL), SwitchableLine.camera(SMALL)
    one.frame_in(3, "dim")  # another look and frame rendered first change nothing
    for look in LOOKS:
        a, b = one.frame_in(7, look), other.frame_in(7, look)
        assert np.array_equal(a.image, b.image), look
        assert a.truth == b.truth
    assert np.array_equal(one.frame_in(7, "normal").image, CameraLine(SMALL).frame(7).image)


def test_every_look_shows_the_same_part_in_another_appearance() -> None:
    line = SwitchableLine.camera(SMALL)
    normal = line.frame_in(12, "normal")
    for look in set(LOOKS) - {"normal"}:
        seen = line.frame_in(12, look)
        inner = {k: v for k, v in seen.truth.to_dict().items() if k != "look"}
        assert inner == {k: v for k, v in normal.truth.to_dict().items() if k != "look"}, look
        assert seen.truth.to_dict()["look"] == look
        assert np.abs(seen.image.astype(np.int16) - normal.image.astype(np.int16)).mean() > 3, look


def _brightness(image: np.ndarray) -> float:
    return float(image.mean())


def _warmth(image: np.ndarray) -> float:
    blue, _, red = _channel_means(image)
    return red - blue


def test_the_looks_do_what_their_names_say() -> None:
    line = SwitchableLine.camera(SMALL)

    def over_frames(look: str, measure: Callable[[np.ndarray], float]) -> float:
        return float(np.mean([measure(line.frame_in(i, look).image) for i in range(0, 40, 4)]))

    assert over_frames("dim", _brightness) < 0.85 * over_frames("normal", _brightness)
    assert over_frames("warm", _warmth) > over_frames("normal", _warmth) + 10
    assert over_frames("unseen", _warmth) > over_frames("normal", _warmth) + 10
    assert camera_look(SMALL, "mesh").belt == "mesh"
    assert camera_look(SMALL, "unseen") == SMALL.unseen_appearance()


def test_a_switch_takes_effect_at_the_next_frame_and_reports_the_previous_look() -> None:
    line = SwitchableLine.camera(SMALL)
    assert (line.look, line.looks) == ("normal", tuple(LOOKS))
    before = line.frame(5)
    assert line.set_look("unseen") == "normal"
    after = line.frame(5)
    assert after.truth.look == "unseen"
    assert np.array_equal(after.image, line.frame_in(5, "unseen").image)
    assert not np.array_equal(after.image, before.image)
    assert line.set_look("normal") == "unseen"
    assert np.array_equal(line.frame(5).image, before.image)


def test_an_unknown_look_is_refused_naming_the_known_ones() -> None:
    line = SwitchableLine.camera(SMALL)
    with pytest.raises(LookError, match=r"unknown look 'foggy'; looks: normal, unseen, dim, warm, mesh"):
        line.set_look("foggy")
    assert line.look == "normal"
    with pytest.raises(LookError, match="foggy"):
        SwitchableLine.camera(SMALL, look="foggy")


def test_parcel_looks_keep_the_parcels_and_change_belt_and_light() -> None:
    config = ParcelLineConfig(seed=4)
    unseen = parcel_look(config, "unseen")
    assert (unseen.belt, unseen.lighting) == ("green", "flicker")
    assert (unseen.length_mm, unseen.width_mm) == (config.length_mm, config.width_mm)
    assert parcel_look(config, "dim").lighting == "dim"
    line = SwitchableLine.parcels(config)
    normal, green = line.frame_in(30, "normal"), line.frame_in(30, "unseen")
    assert normal.truth.inner.to_dict() == green.truth.inner.to_dict()  # the same parcels, same places
    _, green_g, green_r = _channel_means(green.image)
    _, normal_g, normal_r = _channel_means(normal.image)
    assert green_g - green_r > normal_g - normal_r + 10  # the green belt
