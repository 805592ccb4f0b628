"""Find the optional labelled defects for the supervised type head (numpy + OpenCV only).

Two places, in this order:

    --labelled DIR          DIR/<defect_type>/*.png
    DIR/train/<defect_type>/*.png   beside train/good (MVTec AD's train/ has good parts only;
                                    this is an extension, used only when such folders exist)

Each type needs at least :data:`MIN_PER_TYPE` images (a handful per type is what a plant has;
fewer cannot hold out anything), every image must be readable, and a type may not be named
``good`` or ``anomaly`` (the anomaly model's own labels) or break the wire's label pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from domain_models.anomaly.data import GOOD, DatasetError, list_images, read_image
from protocol.inference import ANOMALY_LABELS

MIN_PER_TYPE = 3
MIN_TYPES = 1
# protocol.messages.Name: what a label may look like on the wire.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


@dataclass(frozen=True)
class LabelledDefects:
    """Labelled defect images by type (types sorted) and the folder they came from."""

    source: Path
    by_type: dict[str, tuple[Path, ...]]

    @property
    def types(self) -> tuple[str, ...]:
        """Defect type names, sorted: the order of the head's classes after 'good'."""
        return tuple(sorted(self.by_type))

    def describe(self) -> str:
        """One line for the CLI: how many of each type, from where."""
        counts = ", ".join(f"{t} {len(self.by_type[t])}" for t in self.types)
        total = sum(len(v) for v in self.by_type.values())
        return f"{total} labelled defects of {len(self.types)} type(s) ({counts}) from {self.source}"


def find_labelled(data: Path, labelled: Path | None = None) -> LabelledDefects | None:
    """The labelled defects of ``labelled`` (or of ``data``/train/<type>); None when there are none.

    Raises DatasetError naming the folder or file that is wrong.
    """
    if labelled is not None:
        if not labelled.is_dir():
            raise DatasetError(
                f"--labelled {labelled}: not a folder (expected {labelled}/<defect_type>/*.png)"
            )
        root, skip = labelled, frozenset[str]()
    else:
        root, skip = data / "train", frozenset({GOOD})
        if not root.is_dir():
            return None
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name not in skip)
    if not dirs:
        if labelled is not None:
            raise DatasetError(f"--labelled {labelled}: no <defect_type> sub-folders")
        return None
    by_type: dict[str, tuple[Path, ...]] = {}
    for folder in dirs:
        name = folder.name
        if name in ANOMALY_LABELS:
            raise DatasetError(
                f"{folder}: {name!r} cannot be a defect type (the model's own labels are "
                f"{' and '.join(repr(label) for label in ANOMALY_LABELS)}); rename the folder"
            )
        if not _NAME.match(name) or len(name) > 128:
            raise DatasetError(
                f"{folder}: {name!r} is not a usable label (letters, digits and _ . : - only, "
                "starting with a letter or digit)"
            )
        images = list_images(folder)
        if len(images) < MIN_PER_TYPE:
            raise DatasetError(
                f"{folder}: {len(images)} labelled image(s) of {name!r}, at least {MIN_PER_TYPE} are "
                "needed per type (add images or remove the folder)"
            )
        for image in images:
            read_image(image)  # names the file when it is unreadable
        by_type[name] = tuple(images)
    return LabelledDefects(source=root, by_type=by_type)
