"""Shared bits of the benchmarks: frame folders, timing, and a printed report."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from simulators.camera_line import CameraLine, CameraLineConfig
from simulators.writers import write_frames

log = logging.getLogger("bench")


def frame_folder(folder: Path, count: int, seed: int = 5150) -> list[Path]:
    """Write ``count`` simulated frames once; return their paths in order."""
    if not (folder / "labels.jsonl").exists() or len(list(folder.glob("*.png"))) != count:
        write_frames(CameraLine(CameraLineConfig(seed=seed, defect_rate=0.3)), folder, count)
    return sorted(folder.glob("frame_*.png"))


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def report(title: str, rows: list[tuple[str, str]]) -> None:
    """Print a small aligned table (benchmarks are CLIs: their output is the product)."""
    width = max(len(k) for k, _ in rows)
    print(f"\n== {title}")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
