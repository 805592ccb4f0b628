"""Read an MVTec AD folder (numpy + OpenCV only), refusing anything that is not shaped like one.

DIR/train/good/*.png                       good images to fit on
DIR/test/good/*.png, DIR/test/<type>/*.png  held-out images, by defect type
DIR/ground_truth/<type>/<stem>_mask.png     optional pixel masks (255 = defect)
DIR/calibration/good/*.png                  optional: more good images, used only to set the threshold
DIR/train/<type>/*.png                     optional: a few labelled defects per type, for the
                                            supervised type head (labelled.py; not listed here)

A threshold at a 1% false-reject rate is a tail quantile of good scores: from the ~20% of
train/good held out it is the largest of a few dozen scores, and one image decides it.
calibration/good adds good images that are never fitted on, so the quantile is estimated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from domain_models.common import PipelineError

GOOD = "good"  # MVTec AD's folder of good parts (train/good, test/good), not a model label
CALIBRATION = "calibration"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp"})

Image = npt.NDArray[np.uint8]


class DatasetError(PipelineError):
    """The folder is not a usable MVTec AD folder; the message names the path."""


def list_images(folder: Path) -> list[Path]:
    """Image files of one folder, sorted by name (so a seed picks the same images every run)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def calibration_images(root: Path) -> list[Path]:
    """The optional DIR/calibration/good images (empty when the folder has none)."""
    folder = root / CALIBRATION / GOOD
    if not folder.is_dir():
        return []
    images = list_images(folder)
    if not images:
        raise DatasetError(f"{folder}: exists but holds no images (.png, .jpg, .jpeg, .bmp)")
    return images


def read_image(path: Path) -> Image:
    """A BGR uint8 image (grey images are expanded to 3 channels); names the file when unreadable."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot read image {path} (not an image, corrupt, or unsupported format)")
    return np.asarray(image, dtype=np.uint8)


def read_mask(path: Path, shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """A boolean defect mask resized (nearest) to ``shape`` = (h, w)."""
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise DatasetError(f"cannot read mask {path}")
    if mask.shape != shape:
        mask = cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return np.asarray(mask > 127)


@dataclass(frozen=True)
class TestItem:
    """One held-out image: its file, its defect type ('good' or a type) and its mask file if any."""

    path: Path
    kind: str
    mask: Path | None

    @property
    def is_defect(self) -> bool:
        """True for every type but 'good'."""
        return self.kind != GOOD


@dataclass(frozen=True)
class MVTecFolder:
    """The files of a validated MVTec AD folder."""

    root: Path
    train: tuple[Path, ...]
    test: tuple[TestItem, ...]

    @property
    def defect_types(self) -> tuple[str, ...]:
        """Defect types present in test/, sorted."""
        return tuple(sorted({t.kind for t in self.test if t.is_defect}))

    @property
    def has_masks(self) -> bool:
        """True when every defective test image has a mask (pixel AUROC is then defined)."""
        defects = [t for t in self.test if t.is_defect]
        return bool(defects) and all(t.mask is not None for t in defects)


MIN_FIT = 8  # fewer good images than this cannot describe "normal"
MIN_HOLDOUT = 5  # and fewer than this held out cannot set a threshold
MIN_TRAIN_GOOD = MIN_FIT + MIN_HOLDOUT


def open_mvtec(root: Path, min_train: int = 10, need_test: bool = True) -> MVTecFolder:
    """Validate and list an MVTec AD folder; raises DatasetError naming the first missing piece.

    ``min_train=0`` accepts a folder without train/ (evaluation needs only test/).
    """
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    train_dir = root / "train" / GOOD
    if min_train > 0 and not train_dir.is_dir():
        raise DatasetError(f"{root}: not an MVTec AD folder: missing {train_dir} (expected train/good/*.png)")
    train = list_images(train_dir) if train_dir.is_dir() else []
    if len(train) < min_train:
        raise DatasetError(
            f"{train_dir}: {len(train)} image(s) ({', '.join(sorted(IMAGE_SUFFIXES))}), "
            f"at least {min_train} good images are needed"
        )
    test: list[TestItem] = []
    test_dir = root / "test"
    if need_test:
        if not test_dir.is_dir():
            raise DatasetError(
                f"{root}: not an MVTec AD folder: missing {test_dir} (expected test/good, test/<type>)"
            )
        if not (test_dir / GOOD).is_dir():
            raise DatasetError(f"{root}: missing {test_dir / GOOD}")
    if test_dir.is_dir():
        for kind_dir in sorted(p for p in test_dir.iterdir() if p.is_dir()):
            for image in list_images(kind_dir):
                mask = root / "ground_truth" / kind_dir.name / f"{image.stem}_mask.png"
                test.append(TestItem(image, kind_dir.name, mask if mask.is_file() else None))
    if need_test:
        goods = sum(1 for t in test if not t.is_defect)
        if goods < 2:
            raise DatasetError(f"{test_dir / GOOD}: {goods} image(s), at least 2 are needed")
    return MVTecFolder(root=root, train=tuple(train), test=tuple(test))
