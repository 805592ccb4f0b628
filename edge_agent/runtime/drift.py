"""Drift math shared by the gateway and the release builder (``domain_models.drift_reference``).

A frame's input signals (:func:`frame_signals`), a reference distribution of a signal
(:func:`reference_shape`), and the two statistics of :mod:`protocol.drift` over one window or
many at once (:func:`statistics`). One implementation, so the thresholds a release was calibrated
with mean the same on every gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from edge_agent.frames import Image
from edge_agent.runtime.golden import golden_value
from edge_agent.runtime.model import Prediction
from protocol.drift import CENTROID_SIGNAL, IMAGE_SIGNALS, PARCEL_SIGNALS, SCORE_SIGNAL, DriftStatistic
from protocol.messages import DefectOutput

Values = npt.NDArray[np.float64]

# Signals are read from a copy this wide (height keeps the aspect): area-averaging 8x8 pixels of a
# 640x480 frame costs ~0.3 ms, and sensor noise and JPEG blocks average out of the sharpness.
SMALL_WIDTH = 80
# Reference CDF points: quantiles at 0, 5%, ..., 100% (ties merged).
REFERENCE_POINTS = 21
# The dead band is this share of the reference's interquartile range: a JPEG camera path (quality
# 85, the demo's MJPEG) moves the colour tint of the simulator's frames by 0.54 IQR against the PNG
# frames a model is fit on, a new belt or lamp moves brightness, colour and sharpness by 1-25 IQR.
TOLERANCE_IQR = 0.75
# The "bulk" statistic watches the lower decile rising and the median falling.
BULK_LOW, BULK_MID = 0.10, 0.50
KNOWN_SIGNALS: frozenset[str] = frozenset((*IMAGE_SIGNALS, SCORE_SIGNAL, *PARCEL_SIGNALS, CENTROID_SIGNAL))
# A signal a frame does not have (a parcel frame without parcels) is nan there. A window with fewer
# values than this of a signal does not judge it (statistic 0): a handful of reads says little.
MIN_PRESENT = 10


def frame_signals(image: Image) -> tuple[float, ...]:
    """The input signals of one BGR uint8 frame, in the order of ``IMAGE_SIGNALS``.

    brightness: mean luma / 255; contrast: luma standard deviation / 255; warmth:
    ln(mean red / mean blue); tint: ln(mean green / geometric mean of red and blue); sharpness:
    RMS of the 3x3 Laplacian of the luma / 255. All on a copy SMALL_WIDTH pixels wide.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or min(image.shape[:2]) < 2:
        raise ValueError(f"expected a BGR uint8 frame of shape (H, W, 3), got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    small_height = max(2, round(SMALL_WIDTH * height / width))
    small = np.asarray(cv2.resize(image, (SMALL_WIDTH, small_height), interpolation=cv2.INTER_AREA))
    blue, green, red = (float(c) + 1.0 for c in cv2.mean(small)[:3])  # +1: a black frame stays finite
    luma = np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), dtype=np.float32)
    mean, std = cv2.meanStdDev(luma)
    laplacian = np.asarray(cv2.Laplacian(luma, cv2.CV_32F), dtype=np.float32)
    return (
        float(mean[0, 0]) / 255.0,
        float(std[0, 0]) / 255.0,
        float(np.log(red / blue)),
        float(np.log(green / np.sqrt(red * blue))),
        float(np.sqrt(np.mean(laplacian * laplacian))) / 255.0,
    )


def prediction_signals(prediction: Prediction, names: frozenset[str]) -> dict[str, float]:
    """The signals in ``names`` of one prediction: the frame's input signals and the model's score."""
    values: dict[str, float] = {}
    if names & set(IMAGE_SIGNALS) and prediction.frame.image.ndim == 3:
        values.update(zip(IMAGE_SIGNALS, frame_signals(prediction.frame.image), strict=True))
    if SCORE_SIGNAL in names:
        values[SCORE_SIGNAL] = golden_value(prediction)
    return values


def is_flagged(prediction: Prediction) -> bool:
    """Whether the model flagged the part (only defect outputs flag anything)."""
    return isinstance(prediction.output, DefectOutput) and prediction.output.is_defect


class Shaped(Protocol):
    """A reference distribution: a SignalShape, or the DriftSignal of a manifest."""

    @property
    def statistic(self) -> DriftStatistic: ...

    @property
    def edges(self) -> tuple[float, ...]: ...

    @property
    def cdf(self) -> tuple[float, ...]: ...

    @property
    def tolerance(self) -> float: ...


@dataclass(frozen=True)
class SignalShape:
    """A signal's reference distribution and dead band (a DriftSignal without its threshold)."""

    statistic: DriftStatistic
    edges: tuple[float, ...]
    cdf: tuple[float, ...]
    tolerance: float


def reference_shape(
    values: Values, statistic: DriftStatistic, digits: int = 6, tolerance_iqr: float = TOLERANCE_IQR
) -> SignalShape:
    """The reference CDF of ``values`` at its quantiles (ties merged) and its dead band
    (``tolerance_iqr`` times its interquartile range)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or np.isinf(values).any():
        raise ValueError(f"a reference needs finite values (nan: missing), got shape {values.shape}")
    values = values[~np.isnan(values)]
    if len(values) < 2:
        raise ValueError(f"a reference needs at least 2 values, got {len(values)}")
    points = np.quantile(values, np.linspace(0.0, 1.0, REFERENCE_POINTS))
    edges = np.unique(np.round(points, digits))
    # The largest edge is rounded too: every value must lie at or below it for the CDF to end at 1.
    edges[-1] = max(edges[-1], float(values.max()))
    cdf = np.array([np.mean(values <= edge) for edge in edges])
    q75, q25 = np.quantile(values, [0.75, 0.25])
    return SignalShape(
        statistic=statistic,
        edges=tuple(float(e) for e in edges),
        cdf=tuple(round(float(c), 4) for c in cdf[:-1]) + (1.0,),
        tolerance=round(float(tolerance_iqr * (q75 - q25)), digits),
    )


def statistics(shape: Shaped, windows: Values) -> tuple[Values, npt.NDArray[np.bool_]]:
    """The statistic of each row of ``windows`` (m windows x n values) and whether it moved up.

    ``ks``: largest of F_w(e - tol) - F_ref(e) (window further down) and F_ref(e) - F_w(e + tol)
    (further up) over the edges e. ``bulk``: largest of F_ref(q10_w - tol) - 0.10 (lower decile
    up) and 0.50 - F_ref(q50_w + tol) (median down). Both at least 0. Missing values (nan) are
    left out; a window with fewer than MIN_PRESENT values gets 0.
    """
    windows = np.atleast_2d(np.asarray(windows, dtype=np.float64))
    edges, cdf = np.asarray(shape.edges), np.asarray(shape.cdf)
    tol = shape.tolerance
    present = (~np.isnan(windows)).sum(axis=1)
    judged = present >= MIN_PRESENT
    if not judged.all():
        # Rows too sparse to judge read as the reference's median: their statistic is 0 below.
        windows = np.where(judged[:, None], windows, reference_median(shape))
        present = np.where(judged, present, windows.shape[1])
    if shape.statistic == "ks":
        # nan compares False: it counts in neither CDF, and each row is divided by its own count.
        below_low = (windows[:, :, None] <= (edges - tol)[None, None, :]).sum(axis=1) / present[:, None]
        below_high = (windows[:, :, None] <= (edges + tol)[None, None, :]).sum(axis=1) / present[:, None]
        down = (below_low - cdf[None, :]).max(axis=1)
        up = (cdf[None, :] - below_high).max(axis=1)
    else:
        quantile = np.quantile if bool((present == windows.shape[1]).all()) else np.nanquantile
        low, mid = quantile(windows, [BULK_LOW, BULK_MID], axis=1)
        up = np.interp(low - tol, edges, cdf, left=0.0, right=1.0) - BULK_LOW
        down = BULK_MID - np.interp(mid + tol, edges, cdf, left=0.0, right=1.0)
    stat: Values = np.where(judged, np.maximum(np.maximum(up, down), 0.0), 0.0)
    moved_up: npt.NDArray[np.bool_] = np.asarray(up >= down)
    return stat, moved_up


def reference_median(shape: Shaped) -> float:
    """The reference's median, read off its CDF."""
    return float(np.interp(0.5, np.asarray(shape.cdf), np.asarray(shape.edges)))
