"""Fixtures of the parcel tests: a simulated capture of a reference box under a moved camera."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from simulators.parcel_line import ParcelLine, ParcelLineConfig

# The camera after the move: 1.5 mm/px where the release (and the simulated line's default) says 1.25.
MOVED_MM_PER_PX = 1.5
REFERENCE_BOX_MM = (400.0, 300.0)


@pytest.fixture(scope="session")
def reference_box_capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """Frames of one reference box size riding the belt under the moved camera, laid out as
    ``factoryctl datasets export`` writes them (``train/good/NNNNNN.png``), and the camera's true
    mm per pixel."""
    length, width = REFERENCE_BOX_MM
    line = ParcelLine(
        ParcelLineConfig(
            seed=7, mm_per_px=MOVED_MM_PER_PX, length_mm=(length, length), width_mm=(width, width),
            gap_px=(500, 700), damage_rate=0.0,
        )
    )  # fmt: skip
    root = tmp_path_factory.mktemp("reference-box")
    folder = root / "train" / "good"
    folder.mkdir(parents=True)
    for n, index in enumerate(range(0, 120, 3), start=1):
        cv2.imwrite(str(folder / f"{n:06d}.png"), line.frame(index).image)
    return root, MOVED_MM_PER_PX
