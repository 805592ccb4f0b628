"""Drift math: a frame's input signals, a reference distribution, and the ks and bulk statistics."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_agent.runtime.drift import (
    TOLERANCE_IQR,
    SignalShape,
    frame_signals,
    reference_median,
    reference_shape,
    statistics,
)
from protocol.drift import IMAGE_SIGNALS

RNG_SEED = 5


def _signals(image: np.ndarray) -> dict[str, float]:
    return dict(zip(IMAGE_SIGNALS, frame_signals(image), strict=True))


def test_a_flat_grey_frame_has_its_brightness_no_contrast_no_colour_cast_and_no_edges() -> None:
    signals = _signals(np.full((480, 640, 3), 128, np.uint8))
    assert signals["brightness"] == pytest.approx(128 / 255, abs=1e-3)
    assert signals["contrast"] == pytest.approx(0.0, abs=1e-6)
    assert signals["warmth"] == pytest.approx(0.0, abs=1e-6)
    assert signals["tint"] == pytest.approx(0.0, abs=1e-6)
    assert signals["sharpness"] == pytest.approx(0.0, abs=1e-6)


def test_warm_light_raises_warmth_and_green_light_raises_tint() -> None:
    grey = np.full((120, 160, 3), 100, np.uint8)
    warm = grey.copy()
    warm[..., 2], warm[..., 0] = 130, 80  # more red, less blue (BGR)
    green = grey.copy()
    green[..., 1] = 130
    assert _signals(warm)["warmth"] > 0.4
    assert _signals(green)["tint"] > 0.2
    assert abs(_signals(warm)["tint"]) < 0.05  # warmth does not leak into tint


def test_a_blurred_frame_is_less_sharp_and_the_aspect_ratio_does_not_matter() -> None:
    rng = np.random.default_rng(RNG_SEED)
    blocks = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    sharp = cv2.resize(blocks, (640, 480), interpolation=cv2.INTER_NEAREST)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 12)
    assert _signals(blurred)["sharpness"] < 0.5 * _signals(sharp)["sharpness"]
    wide = cv2.resize(blocks, (1280, 480), interpolation=cv2.INTER_NEAREST)
    assert _signals(wide)["brightness"] == pytest.approx(_signals(sharp)["brightness"], abs=0.01)


@pytest.mark.parametrize(
    "image",
    [np.zeros((48, 64), np.uint8), np.zeros((48, 64, 3), np.float32), np.zeros((1, 64, 3), np.uint8)],
    ids=["grey", "float", "one-row"],
)
def test_a_frame_that_is_not_bgr_uint8_is_refused_with_its_shape(image: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"expected a BGR uint8 frame .* got"):
        frame_signals(image)


def test_reference_shape_is_a_cdf_ending_at_one_with_ties_merged() -> None:
    values = np.array([0.0] * 50 + list(np.linspace(0.1, 1.0, 50)))
    shape = reference_shape(values, "ks")
    assert list(shape.edges) == sorted(set(shape.edges))
    assert shape.edges[0] == 0.0
    assert shape.cdf[0] == pytest.approx(0.5)  # half the values tie at the smallest edge
    assert shape.cdf[-1] == 1.0
    assert all(b >= a for a, b in zip(shape.cdf, shape.cdf[1:], strict=False))
    q75, q25 = np.quantile(values, [0.75, 0.25])
    assert shape.tolerance == pytest.approx(TOLERANCE_IQR * (q75 - q25), abs=1e-6)


def test_reference_shape_refuses_too_few_or_infinite_values() -> None:
    with pytest.raises(ValueError, match="at least 2 values, got 1"):
        reference_shape(np.array([1.0]), "ks")
    with pytest.raises(ValueError, match="at least 2 values, got 1"):
        reference_shape(np.array([1.0, np.nan]), "ks")  # nan is a missing value, not a value
    with pytest.raises(ValueError, match="finite values"):
        reference_shape(np.array([1.0, np.inf, 2.0]), "ks")


def test_reference_shape_leaves_missing_values_out() -> None:
    # A parcel frame without parcels has no detector confidence: nan there, not a low value.
    with_gaps = reference_shape(np.array([0.1, np.nan, 0.5, np.nan, 0.9]), "ks")
    assert with_gaps == reference_shape(np.array([0.1, 0.5, 0.9]), "ks")


def _normal_shape(statistic: str, tolerance: float | None = None) -> tuple[SignalShape, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED)
    reference = rng.normal(0.0, 1.0, 2000)
    shape = reference_shape(reference, statistic)  # type: ignore[arg-type]
    if tolerance is not None:
        shape = SignalShape(shape.statistic, shape.edges, shape.cdf, tolerance)
    return shape, rng.normal(0.0, 1.0, (200, 100))


def test_ks_of_windows_from_the_reference_distribution_is_small() -> None:
    shape, windows = _normal_shape("ks", tolerance=0.0)
    stats, _ = statistics(shape, windows)
    assert stats.shape == (200,)
    # The two-sample KS distance of 100 draws stays under ~0.2 in all but a few per thousand.
    assert np.quantile(stats, 0.95) < 0.2


@pytest.mark.parametrize(("shift", "up"), [(3.0, True), (-3.0, False)])
def test_ks_of_a_shifted_window_is_large_and_says_which_way(shift: float, up: bool) -> None:
    shape, windows = _normal_shape("ks")
    stats, moved_up = statistics(shape, windows + shift)
    assert stats.min() > 0.5  # 3 sd, less the dead band of 0.75 IQR: ~2 sd beyond it
    assert bool(moved_up.all()) is up


def test_the_dead_band_forgives_a_shift_smaller_than_the_tolerance() -> None:
    shape, windows = _normal_shape("ks")
    iqr = 1.349  # of a standard normal
    small = statistics(shape, windows + 0.3 * iqr)[0]
    large = statistics(shape, windows + 2.0 * iqr)[0]
    without_band = statistics(SignalShape("ks", shape.edges, shape.cdf, 0.0), windows + 0.3 * iqr)[0]
    assert np.median(small) < 0.02
    assert np.median(without_band) > 0.08  # the same shift without the band is plainly seen
    assert np.median(large) > 0.5


def test_bulk_ignores_a_burst_of_high_scores_but_not_the_whole_distribution_moving() -> None:
    shape, windows = _normal_shape("bulk")
    burst = windows.copy()
    burst[:, :40] = 8.0  # 40% of each window far above every reference score: defective parts
    drifted = windows + 3.0
    burst_stats, _ = statistics(shape, burst)
    drift_stats, drift_up = statistics(shape, drifted)
    ks_of_burst = statistics(SignalShape("ks", shape.edges, shape.cdf, shape.tolerance), burst)[0]
    assert np.quantile(burst_stats, 0.99) < 0.05
    assert ks_of_burst.min() > 0.3  # what a plain KS would have alarmed on
    assert drift_stats.min() > 0.4  # the lower decile, less the dead band, sits at the reference's ~75%
    assert drift_up.all()


def test_bulk_sees_the_median_falling() -> None:
    shape, windows = _normal_shape("bulk")
    stats, up = statistics(shape, windows - 3.0)
    assert stats.min() > 0.3
    assert not up.any()


def test_reference_median_is_read_off_the_cdf() -> None:
    shape = reference_shape(np.linspace(10.0, 20.0, 1001), "bulk")
    assert reference_median(shape) == pytest.approx(15.0, abs=0.05)
