"""Labelled image sets rendered by the camera-line simulator, already resized for the model.

Each split comes from its own simulator seed, so validation and test parts were never seen in
training. Frames are kept as resized uint8 (not float) so a few thousand fit in memory.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_agent.runtime.preprocess import prepare_image
from protocol.inference import DEFECT_LABELS
from protocol.manifest import Preprocessing
from simulators.camera_line import CameraLine, CameraLineConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """Resized frames ``(N, h, w, C)`` uint8 and their label indices into ``DEFECT_LABELS``."""

    name: str
    pixels: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _render_range(
    config: CameraLineConfig, start: int, stop: int, spec: Preprocessing
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    line = CameraLine(config)
    pixels, labels = [], []
    for index in range(start, stop):
        frame = line.frame(index)
        pixels.append(prepare_image(frame.image, spec))
        labels.append(DEFECT_LABELS.index(frame.truth.label))
    return np.stack(pixels), np.asarray(labels, np.int64)


def render_split(
    name: str, config: CameraLineConfig, count: int, spec: Preprocessing, workers: int = 1
) -> Split:
    """Render frames ``0..count-1`` of ``config``'s line and preprocess them to model size.

    With ``workers > 1`` the frames are rendered in spawned processes (never forked: a process
    that has loaded torch's thread pools can deadlock after fork). The result does not depend
    on ``workers``.
    """
    if count < 1:
        raise ValueError(f"render_split({name!r}): count must be >= 1, got {count}")
    chunk = 250
    ranges = [(s, min(s + chunk, count)) for s in range(0, count, chunk)]
    if workers <= 1:
        parts = [_render_range(config, s, e, spec) for s, e in ranges]
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [pool.submit(_render_range, config, s, e, spec) for s, e in ranges]
            parts = [f.result() for f in futures]
    split = Split(
        name=name,
        pixels=np.concatenate([p for p, _ in parts]),
        labels=np.concatenate([lab for _, lab in parts]),
    )
    counts = np.bincount(split.labels, minlength=len(DEFECT_LABELS))
    log.info("rendered %s: %d frames (seed %d), per class %s", name, count, config.seed, counts.tolist())
    return split
