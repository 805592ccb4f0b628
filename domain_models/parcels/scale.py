"""A line's ``mm_per_px`` from frames of one reference box of known size under its camera.

The shipped detector measures a parcel's top in frame pixels (its release's size bias already
taken off, as on the gateway); the gateway turns pixels into mm with the line's ``mm_per_px``.
When the camera moves, is refocused or replaced, that factor changes while the detector does not,
so the fix is a new factor, measured here, not a new model.

Each frame must show the reference box alone and wholly in view: a frame with no detection, with
several, with the box cut by the frame edge, or with a box whose sides' ratio is far from the
reference's (something else, or a partial detection) is rejected. The estimate is the median over
the kept frames (one bad frame cannot move it), and its spread the interquartile range.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge_agent.runtime.parcels import Detection, ParcelRunner

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
MIN_FRAMES = 5  # fewer kept frames than this give a median one odd frame can still move
EDGE_MARGIN_PX = 4  # the runner's own "wholly in view" margin (ParcelRunner._observe)
# Largest relative gap between the measured and the reference's length/width ratio: a box seen
# whole matches it within a few per cent; a half-seen box or another object does not.
MAX_RATIO_ERROR = 0.12


class ScaleError(ValueError):
    """Input the measurement cannot use; the message says what to change."""


@dataclass(frozen=True)
class ScaleEstimate:
    """The measured ``mm_per_px`` and how it was reached."""

    mm_per_px: float
    q25: float
    q75: float
    used: int
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def spread_percent(self) -> float:
        """Half the interquartile range, as a share of the estimate (per cent)."""
        return 50.0 * (self.q75 - self.q25) / self.mm_per_px

    def describe(self) -> str:
        """Lines for a person: the figure, its spread, frames used and rejected and why."""
        rejected = ", ".join(f"{n} {why}" for why, n in sorted(self.rejected.items()) if n) or "none"
        return (
            f"mm_per_px {self.mm_per_px:.4f}\n"
            f"  spread +/-{self.spread_percent:.2f} % (interquartile {self.q25:.4f} .. {self.q75:.4f})\n"
            f"  frames used {self.used}; rejected: {rejected}\n"
        )


def image_files(folder: Path) -> list[Path]:
    """Every image under ``folder`` (an exported dataset's train/ and test/ folders alike), sorted."""
    if not folder.is_dir():
        raise ScaleError(f"{folder}: not a folder (pass a capture exported with factoryctl datasets export)")
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not found:
        raise ScaleError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in it or below it")
    return found


def _whole(det: Detection, width: int, height: int) -> bool:
    corners = cv2.boxPoints((det.center, det.size, det.angle_deg))
    low, high = corners.min(axis=0), corners.max(axis=0)
    m = EDGE_MARGIN_PX
    return bool(low[0] >= m and low[1] >= m and high[0] <= width - m and high[1] <= height - m)


def frame_scale(dets: list[Detection], box_mm: tuple[float, float], width: int, height: int) -> float | str:
    """One frame's mm per pixel, or why the frame cannot give one."""
    if not dets:
        return "no box found"
    if len(dets) > 1:
        return "several boxes"
    det = dets[0]
    if not _whole(det, width, height):
        return "box cut by the frame edge"
    length_px, width_px = det.size
    ratio = (length_px / width_px) / (box_mm[0] / box_mm[1])
    if abs(ratio - 1.0) > MAX_RATIO_ERROR:
        return "box of another shape"
    # Both sides at once: their sum halves the relative effect of one edge's pixel error.
    return (box_mm[0] + box_mm[1]) / (length_px + width_px)


def estimate(
    runner: ParcelRunner, images: Iterable[tuple[str, np.ndarray]], box_mm: tuple[float, float]
) -> ScaleEstimate:
    """The median mm per pixel over ``images`` (name, BGR frame) of a ``box_mm`` (length, width) box."""
    length, width = max(box_mm), min(box_mm)
    if width <= 0:
        raise ScaleError(f"--box-mm: sides must be > 0 mm, got {box_mm[0]:g} x {box_mm[1]:g}")
    scales: list[float] = []
    rejected: dict[str, int] = {}
    for name, image in images:
        got = frame_scale(runner.detect(image), (length, width), image.shape[1], image.shape[0])
        if isinstance(got, str):
            log.debug("%s: rejected, %s", name, got)
            rejected[got] = rejected.get(got, 0) + 1
        else:
            scales.append(got)
    if len(scales) < MIN_FRAMES:
        said = ", ".join(f"{n} {why}" for why, n in sorted(rejected.items())) or "no frames"
        raise ScaleError(
            f"only {len(scales)} frame(s) show the {length:g} x {width:g} mm box alone and whole "
            f"(need {MIN_FRAMES}; rejected: {said}); capture more frames with the box alone in view"
        )
    q25, median, q75 = (float(v) for v in np.percentile(scales, [25, 50, 75]))
    return ScaleEstimate(median, q25, q75, len(scales), rejected)


def read_images(paths: list[Path]) -> Iterable[tuple[str, np.ndarray]]:
    """(name, BGR frame) of each readable file; one that is not an image is an error naming it."""
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ScaleError(f"{path}: not a readable image")
        yield path.name, image
