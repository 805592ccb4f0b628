"""Folders of simulated camera frames for ``factory-models drift``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2

from simulators.line_frames import Image


def write_frames(folder: Path, frames: Sequence[Image]) -> Path:
    """The frames as numbered PNGs in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(frames):
        assert cv2.imwrite(str(folder / f"{i:04d}.png"), image)
    return folder
