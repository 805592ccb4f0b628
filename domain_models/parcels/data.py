"""Training and evaluation data from the parcel-line simulator: tensors, targets, sequences."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from domain_models.parcels.model import INPUT_SIZE
from edge_agent.runtime.preprocess import to_tensor
from protocol.manifest import Preprocessing
from simulators.parcel_line import ParcelLine, ParcelLineConfig

PREPROCESSING = Preprocessing(resize=INPUT_SIZE, color="rgb", scale=1.0 / 255.0)
TRAIN_BELTS = ("rubber", "mesh")
TRAIN_LIGHTS = ("neutral", "warm", "dim")
FRAME_STRIDE = 5  # training frames this far apart: the belt moves 160 px, a new view of each box


@dataclass(frozen=True)
class Dataset:
    """Model inputs (N, 3, H, W) float32 in [0, 1] and targets (N, 2, H, W) in [0, 1]."""

    images: npt.NDArray[np.float32]
    targets: npt.NDArray[np.float32]
    digest: str  # SHA-256 of the generating settings: the manifest's lineage.data_sha256


def train_config(seed: int, k: int) -> ParcelLineConfig:
    """The ``k``-th training line of a run: belts and lights cycle, seeds never meet evaluation's."""
    return ParcelLineConfig(
        seed=seed * 1000 + k,
        damage_rate=0.4,  # damage is rare on the line; oversampled so the damage map has examples
        belt=TRAIN_BELTS[k % len(TRAIN_BELTS)],  # type: ignore[arg-type]
        lighting=TRAIN_LIGHTS[(k // len(TRAIN_BELTS)) % len(TRAIN_LIGHTS)],  # type: ignore[arg-type]
    )


def eval_config(seed: int, k: int, unseen: bool) -> ParcelLineConfig:
    """The ``k``-th evaluation line: other seeds (offset 500000), optionally the unseen settings."""
    cfg = ParcelLineConfig(seed=500_000 + seed * 1000 + k, belt="rubber", lighting="neutral")
    return cfg.unseen() if unseen else cfg


def targets_of(
    parcel_mask: npt.NDArray[np.float32], damage_mask: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Full-resolution masks -> (2, H, W) soft targets at model resolution (area-averaged)."""
    maps = [cv2.resize(m, INPUT_SIZE, interpolation=cv2.INTER_AREA) for m in (parcel_mask, damage_mask)]
    return np.stack(maps).astype(np.float32)


def build(seed: int, lines: int, frames_per_line: int) -> Dataset:
    """Render ``lines x frames_per_line`` training frames (every ``FRAME_STRIDE``-th of each line)."""
    images, targets = [], []
    for k in range(lines):
        line = ParcelLine(train_config(seed, k))
        for j in range(frames_per_line):
            frame = line.frame(j * FRAME_STRIDE + k % FRAME_STRIDE)
            images.append(to_tensor([frame.image], PREPROCESSING)[0])
            targets.append(targets_of(frame.parcel_mask, frame.damage_mask))
    digest = hashlib.sha256(
        f"parcel_line v1 seed={seed} lines={lines} frames={frames_per_line}".encode()
    ).hexdigest()
    return Dataset(np.stack(images).astype(np.float32), np.stack(targets), digest)
