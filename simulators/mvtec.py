"""Write camera-line frames as an MVTec AD folder: the layout anomaly-detection users already have.

    python -m simulators.mvtec --out data/sim-mvtec --seed 11 [--train 120 --test-good 60 --per-type 20]

    OUT/train/good/000.png               good parts only (seed)
    OUT/test/good/000.png                good parts (seed + 1000: other parts, same line)
    OUT/test/<defect>/000.png            one defect each (seed + 1000)
    OUT/ground_truth/<defect>/000_mask.png   exact masks: 255 where the defect changed pixels

Masks are exact because the simulator renders a defective frame as the same frame as the good
one plus the defect pixels: the mask is where the two renderings differ.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from simulators.camera_line import GOOD, CameraLine, CameraLineConfig

log = logging.getLogger(__name__)

TEST_SEED_OFFSET = 1000


def _write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")


def write_mvtec(
    out: Path,
    config: CameraLineConfig,
    train_good: int = 120,
    test_good: int = 60,
    per_type: int = 20,
    test_config: CameraLineConfig | None = None,
) -> Path:
    """Render an MVTec-layout folder; ``test_config`` (default: ``config`` at seed + 1000) renders test/."""
    if min(train_good, test_good, per_type) < 0:
        raise ValueError("image counts must be >= 0")
    good_line = CameraLine(replace(config, defect_rate=0.0))
    for i in range(train_good):
        _write_png(out / "train" / GOOD / f"{i:03d}.png", good_line.frame(i).image)

    test_cfg = test_config or replace(config, seed=config.seed + TEST_SEED_OFFSET)
    test_good_line = CameraLine(replace(test_cfg, defect_rate=0.0))
    for i in range(test_good):
        _write_png(out / "test" / GOOD / f"{i:03d}.png", test_good_line.frame(i).image)

    # Indices >= test_good so no defective part is also a test/good part.
    defect_line = CameraLine(replace(test_cfg, defect_rate=1.0))
    counts = dict.fromkeys(test_cfg.defect_types, 0)
    index = test_good
    while per_type and min(counts.values()) < per_type:
        frame = defect_line.frame(index)
        label = frame.truth.label
        if counts[label] < per_type:
            clean = test_good_line.frame(index).image
            diff = np.abs(frame.image.astype(np.int16) - clean.astype(np.int16)).max(axis=2)
            mask = np.where(diff > 0, 255, 0).astype(np.uint8)
            n = counts[label]
            _write_png(out / "test" / label / f"{n:03d}.png", frame.image)
            _write_png(out / "ground_truth" / label / f"{n:03d}_mask.png", mask)
            counts[label] = n + 1
        index += 1
    log.info("wrote MVTec folder %s: %d train, %d test good, %s defects", out, train_good, test_good, counts)
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: write a simulator MVTec folder."""
    parser = argparse.ArgumentParser(prog="python -m simulators.mvtec", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="Folder to create")
    parser.add_argument(
        "--seed", type=int, default=11, help="Line seed of train/good (test uses seed + 1000)"
    )
    parser.add_argument("--train", type=int, default=120, help="train/good images")
    parser.add_argument("--test-good", type=int, default=60, help="test/good images")
    parser.add_argument("--per-type", type=int, default=20, help="test images per defect type")
    parser.add_argument("--width", type=int, default=640, help="Frame width in pixels")
    parser.add_argument("--height", type=int, default=480, help="Frame height in pixels")
    parser.add_argument("--unseen", action="store_true", help="Render test/ under the unseen belt and light")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = CameraLineConfig(seed=args.seed, width=args.width, height=args.height)
    test_cfg = replace(config, seed=args.seed + TEST_SEED_OFFSET)
    if args.unseen:
        test_cfg = test_cfg.unseen_appearance()
    write_mvtec(args.out, config, args.train, args.test_good, args.per_type, test_cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
