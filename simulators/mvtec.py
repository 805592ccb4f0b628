"""Write camera-line frames as an MVTec AD folder: the layout anomaly-detection users already have.

    python -m simulators.mvtec --out data/sim-mvtec --seed 11 [--train 120 --test-good 60 --per-type 20]

    OUT/train/good/000.png               good parts only (seed)
    OUT/test/good/000.png                good parts (seed + 1000: other parts, same line)
    OUT/test/<defect>/000.png            one defect each (seed + 1000)
    OUT/ground_truth/<defect>/000_mask.png   exact masks: 255 where the defect changed pixels
    OUT/train/<defect>/000.png           optional (--train-per-type N): labelled defects of the
                                         train line (seed), for the supervised type head

MVTec AD's train/ holds good parts only; train/<defect> is this project's optional extension for
a plant that has a few labelled defects per type (see domain_models/anomaly/labelled.py).

Masks are exact because the simulator renders a defective frame as the same frame as the good
one plus the defect pixels: the mask is where the two renderings differ.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from protocol.inference import GOOD_LABEL
from simulators.camera_line import CameraLine, CameraLineConfig

# The folders this command writes into --out (and --replace deletes).
WRITTEN = ("train", "test", "ground_truth")

log = logging.getLogger(__name__)

TEST_SEED_OFFSET = 1000
PROG = "factory-sim mvtec"


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
    train_per_type: int = 0,
) -> Path:
    """Render an MVTec-layout folder; ``test_config`` (default: ``config`` at seed + 1000) renders test/.

    ``train_per_type`` > 0 also writes labelled defects of the train line to train/<defect>/.
    """
    if min(train_good, test_good, per_type, train_per_type) < 0:
        raise ValueError("image counts must be >= 0")
    good_line = CameraLine(replace(config, defect_rate=0.0))
    for i in range(train_good):
        _write_png(out / "train" / GOOD_LABEL / f"{i:03d}.png", good_line.frame(i).image)
    # Indices >= train_good: labelled defects are other parts than the good ones.
    _write_defects(out / "train", CameraLine(replace(config, defect_rate=1.0)), train_per_type, train_good)

    test_cfg = test_config or replace(config, seed=config.seed + TEST_SEED_OFFSET)
    test_good_line = CameraLine(replace(test_cfg, defect_rate=0.0))
    for i in range(test_good):
        _write_png(out / "test" / GOOD_LABEL / f"{i:03d}.png", test_good_line.frame(i).image)

    # Indices >= test_good so no defective part is also a test/good part.
    defect_line = CameraLine(replace(test_cfg, defect_rate=1.0))
    counts = _write_defects(
        out / "test", defect_line, per_type, test_good, test_good_line, out / "ground_truth"
    )
    log.info(
        "wrote MVTec folder %s: %d train good, %d labelled train defects per type, %d test good, %s defects",
        out,
        train_good,
        train_per_type,
        test_good,
        counts,
    )
    return out


def _write_defects(
    folder: Path,
    line: CameraLine,
    per_type: int,
    start: int,
    good_line: CameraLine | None = None,
    masks: Path | None = None,
) -> dict[str, int]:
    """``per_type`` defective frames of each type into folder/<type>/; exact masks when asked."""
    counts = dict.fromkeys(line.config.defect_types, 0)
    index = start
    while per_type and min(counts.values()) < per_type:
        frame = line.frame(index)
        label = frame.truth.label
        if counts[label] < per_type:
            n = counts[label]
            _write_png(folder / label / f"{n:03d}.png", frame.image)
            if good_line is not None and masks is not None:
                clean = good_line.frame(index).image
                diff = np.abs(frame.image.astype(np.int16) - clean.astype(np.int16)).max(axis=2)
                _write_png(masks / label / f"{n:03d}_mask.png", np.where(diff > 0, 255, 0).astype(np.uint8))
            counts[label] = n + 1
        index += 1
    return counts


MVTEC_HELP = (
    "write an MVTec-layout folder (train/good, test/<defect>, ground_truth) to train a defect model on"
)


def add_mvtec_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``factory-sim mvtec`` (and ``python -m simulators.mvtec``)."""
    parser.add_argument("--out", type=Path, required=True, help="Folder to create")
    parser.add_argument(
        "--seed", type=int, default=11, help="Line seed of train/good (test uses seed + 1000)"
    )
    parser.add_argument("--train", type=int, default=120, help="train/good images")
    parser.add_argument("--test-good", type=int, default=60, help="test/good images")
    parser.add_argument("--per-type", type=int, default=20, help="test images per defect type")
    parser.add_argument(
        "--train-per-type", type=int, default=0, help="Also write this many labelled train/<defect> images"
    )
    parser.add_argument("--width", type=int, default=640, help="Frame width in pixels")
    parser.add_argument("--height", type=int, default=480, help="Frame height in pixels")
    parser.add_argument("--unseen", action="store_true", help="Render test/ under the unseen belt and light")
    parser.add_argument(
        "--replace",
        action="store_true",
        help=f"Delete the {', '.join(f'{d}/' for d in WRITTEN)} an earlier run left in --out first "
        "(otherwise such a folder is refused: old images would mix with the new)",
    )


class OptionError(ValueError):
    """A flag of ``factory-sim mvtec`` that cannot give a usable folder; the message names it."""


def _check_counts(args: argparse.Namespace) -> None:
    counts = {
        "--train": args.train,
        "--test-good": args.test_good,
        "--per-type": args.per_type,
        "--train-per-type": args.train_per_type,
    }
    for flag, value in counts.items():
        if value < 0:
            raise OptionError(f"image counts must be >= 0, got {flag} {value}")
    if args.train == 0:
        raise OptionError("--train 0: the folder needs train/good images to train on (at least 1)")
    # A test/ with one class only cannot be evaluated; none at all is a train-only folder.
    if (args.test_good == 0) != (args.per_type == 0):
        raise OptionError(
            f"--test-good {args.test_good} with --per-type {args.per_type}: test/ needs both good and "
            "defective parts; set both to 0 for a folder without test/"
        )
    if args.seed < 0:
        raise OptionError(f"--seed must be >= 0, got {args.seed}")


def _prepare_out(out: Path, replace_old: bool) -> None:
    """Create ``out`` or say why it cannot be: a file in the way, or a place nobody may write."""
    if out.exists() and not out.is_dir():
        raise OptionError(f"--out {out}: is a file, not a folder")
    earlier = [out / d for d in WRITTEN if (out / d).exists()]
    if earlier and not replace_old:
        shown = ", ".join(f"{d.name}/" for d in earlier)
        raise OptionError(
            f"--out {out}: already holds {shown} from an earlier run, whose images would mix with "
            "the new ones; give an empty folder, or --replace to delete them first"
        )
    for folder in earlier:
        shutil.rmtree(folder)
    blocking = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise OptionError(f"--out {out}: cannot create the folder, {blocking} is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OptionError(f"--out {out}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OptionError(f"--out {out}: the folder is not writable")


def _config(args: argparse.Namespace) -> CameraLineConfig:
    try:
        return CameraLineConfig(seed=args.seed, width=args.width, height=args.height)
    except ValueError as exc:
        reason = str(exc).removeprefix("CameraLineConfig: ")
        raise OptionError(f"--width {args.width} --height {args.height}: {reason}") from None


def run_mvtec(args: argparse.Namespace) -> int:
    """Write the folder the flags describe; say where and what to do with it.

    A bad flag or an unwritable --out is one line on stderr and exit status 2 (as argparse does
    for a malformed flag), checked before anything is rendered.
    """
    try:
        _check_counts(args)
        config = _config(args)
        _prepare_out(args.out, args.replace)
        test_cfg = replace(config, seed=args.seed + TEST_SEED_OFFSET)
        if args.unseen:
            test_cfg = test_cfg.unseen_appearance()
        write_mvtec(
            args.out, config, args.train, args.test_good, args.per_type, test_cfg, args.train_per_type
        )
    except OptionError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        raise SystemExit(2) from None
    except OSError as exc:
        # A disk that fills or a folder that vanishes while rendering.
        sys.stderr.write(f"{PROG}: writing {args.out} failed: {exc}\n")
        raise SystemExit(2) from None
    sys.stdout.write(
        f"wrote an MVTec-layout folder to {args.out}; train on it with:\n"
        f"  factory-models train defect --data {args.out} --out OUT_DIR\n"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI: write a simulator MVTec folder."""
    parser = argparse.ArgumentParser(prog="python -m simulators.mvtec", description=__doc__.splitlines()[0])
    add_mvtec_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_mvtec(args)


if __name__ == "__main__":
    raise SystemExit(main())
