"""Crops for the damage classifier: training crops from the simulator's truth, evaluation crops from
the detector's own boxes, each labelled by the simulator's ground truth (damaged or not).

Splits never share a line seed: training lines ``train_config(seed + 200, k)``, calibration lines
``train_config(seed + 300, k)`` (seen belts and lights, used to choose the cut-off), test lines
``eval_config(seed, 200 + k)`` seen and ``.unseen()`` (green belt, flicker, other sizes, more noise).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace

import cv2
import numpy as np
import numpy.typing as npt

from domain_models.parcels.data import eval_config, train_config
from edge_agent.runtime.parcel_damage import CROP_SIZE, Box, in_view, rectify
from edge_agent.runtime.parcels import ParcelRunner
from simulators.parcel_line import ParcelLine, ParcelLineConfig

log = logging.getLogger(__name__)

TRAIN_OFFSET, CALIBRATION_OFFSET, TEST_K = 200, 300, 200
TRAIN_SPEED = 240  # px per rendered training frame: each box is seen wholly about twice, many boxes
EVAL_SPEED = 96  # px per evaluation frame: each box is seen wholly about five times
DAMAGE_RATE = 0.5  # balanced classes for training and for measuring both error rates
MATCH_PX = 20.0  # a detection belongs to the true box whose centre is this close


@dataclass(frozen=True)
class Crops:
    """Crops (N, H, W, 3) BGR uint8, damaged labels (N,), a parcel key per crop, and (training
    crops only) the rendered damage mask of each crop at stride 16, (N, H/16, W/16) in [0, 1]."""

    images: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.bool_]
    parcels: npt.NDArray[np.int64]
    masks: npt.NDArray[np.float32] | None = None

    def __len__(self) -> int:
        return len(self.labels)


def _crops(
    images: list[np.ndarray], labels: list[bool], keys: list[int], masks: list[np.ndarray] | None = None
) -> Crops:
    if not images:
        return Crops(np.zeros((0, 1, 1, 3), np.uint8), np.zeros(0, bool), np.zeros(0, np.int64))
    stacked = np.stack(masks).astype(np.float32) if masks else None
    return Crops(np.stack(images).astype(np.uint8), np.array(labels, bool), np.array(keys, np.int64), stacked)


def _mask_crop(mask: npt.NDArray[np.float32], box: Box) -> npt.NDArray[np.float32]:
    """The damage mask cut like the image (same warp), area-averaged to stride 16."""
    as_image = np.repeat(np.round(mask * 255).astype(np.uint8)[..., None], 3, axis=2)
    crop = rectify(as_image, box)[..., 0].astype(np.float32) / 255.0
    small = cv2.resize(crop, (CROP_SIZE[0] // 16, CROP_SIZE[1] // 16), interpolation=cv2.INTER_AREA)
    return np.asarray(small, np.float32)


def train_lines(seed: int, lines: int) -> list[ParcelLineConfig]:
    """Training lines: the detector's seen belts and lights, fast belt, half the boxes damaged."""
    return [
        replace(train_config(seed + TRAIN_OFFSET, k), damage_rate=DAMAGE_RATE, speed_px=TRAIN_SPEED)
        for k in range(lines)
    ]


def calibration_lines(seed: int, lines: int) -> list[ParcelLineConfig]:
    """Lines for choosing the cut-off: seen settings, seeds of neither training nor test."""
    return [
        replace(train_config(seed + CALIBRATION_OFFSET, k), damage_rate=DAMAGE_RATE, speed_px=EVAL_SPEED)
        for k in range(lines)
    ]


def heldout_lines(seed: int, lines: int, unseen: bool) -> list[ParcelLineConfig]:
    """Held-out lines (seen settings, or the unseen belt/light/sizes)."""
    return [
        replace(eval_config(seed, TEST_K + k, unseen), damage_rate=DAMAGE_RATE, speed_px=EVAL_SPEED)
        for k in range(lines)
    ]


def truth_crops(configs: Iterable[ParcelLineConfig], frames: int, seed: int, repeats: int = 1) -> Crops:
    """Crops along the true boxes of every box wholly in view, with box jitter of the size the
    detector makes (centre +-3 px, size +-3 %, angle +-2 deg) so training matches deployment;
    ``repeats`` jittered crops per box and frame (cheap extra views when frames are few)."""
    rng = np.random.default_rng([seed, 0xDA4A])
    images: list[np.ndarray] = []
    labels: list[bool] = []
    keys: list[int] = []
    masks: list[np.ndarray] = []
    for k, cfg in enumerate(configs):
        line = ParcelLine(cfg)
        for i in range(frames):
            sim = line.frame(i)
            for p in sim.truth.parcels:
                box: Box = (p.center, p.size_px, p.angle_deg)
                if not in_view(box, cfg.width):
                    continue
                for _ in range(repeats):
                    dx, dy, ds, dw, da = rng.normal(0.0, 1.0, 5)
                    jittered: Box = (
                        (p.center[0] + 3 * dx, p.center[1] + 3 * dy),
                        (p.size_px[0] * (1 + 0.03 * ds), p.size_px[1] * (1 + 0.03 * dw)),
                        p.angle_deg + 2 * da,
                    )
                    images.append(rectify(sim.image, jittered))
                    labels.append(p.damage != "none")
                    keys.append(k * 100_000 + p.parcel_id)
                    masks.append(_mask_crop(sim.damage_mask, jittered))
    return _crops(images, labels, keys, masks)


def detected_crops(runner: ParcelRunner, configs: Iterable[ParcelLineConfig], frames: int) -> Crops:
    """Crops along the detector's boxes (what the runner classifies), labelled by the true box they
    fall on; detections far from any true box are left out (they are counting errors, not damage)."""
    images: list[np.ndarray] = []
    labels: list[bool] = []
    keys: list[int] = []
    for k, cfg in enumerate(configs):
        line = ParcelLine(cfg)
        for i in range(frames):
            sim = line.frame(i)
            if not sim.truth.parcels:
                continue
            for det in runner.detect(sim.image):
                box: Box = (det.center, det.size, det.angle_deg)
                if not in_view(box, cfg.width):
                    continue
                truth = min(sim.truth.parcels, key=lambda p: float(np.hypot(
                    p.center[0] - det.center[0], p.center[1] - det.center[1])))  # fmt: skip
                if np.hypot(truth.center[0] - det.center[0], truth.center[1] - det.center[1]) > MATCH_PX:
                    continue
                images.append(rectify(sim.image, box))
                labels.append(truth.damage != "none")
                keys.append(k * 100_000 + truth.parcel_id)
    crops = _crops(images, labels, keys)
    log.info("%d crops of %d parcels", len(crops), len(np.unique(crops.parcels)))
    return crops


def digest(seed: int, lines: int, frames: int) -> str:
    """SHA-256 of the settings that generate the training crops (lineage)."""
    text = f"parcel_damage v1 seed={seed} lines={lines} frames={frames} speed={TRAIN_SPEED}"
    return hashlib.sha256(text.encode()).hexdigest()
