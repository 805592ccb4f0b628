"""Where each file of a dataset goes in an MVTec AD folder, the layout the anomaly trainer reads
(``factory-models train defect --data DIR``, ``domain_models/anomaly/data.py``):

    DIR/train/good/NNNNNN.png     frames labelled good: what the model fits "normal" on
    DIR/test/good/NNNNNN.png      every HOLDOUT_EVERY-th good frame, when defects were labelled too
    DIR/test/<kind>/NNNNNN.png    frames labelled with a defect kind
    DIR/dataset.json              the dataset's facts and every file's path, label and SHA-256

A file's label is its own, or the capture's label (what the operator said when starting it)
when it has none; ``skip`` and unlabelled files are left out. Good frames are held out for
test/good only when some frame shows a defect: the trainer evaluates a release only when test/
holds both, and without defects a held-out good frame would serve nothing but be missed in train/.

It lives in ``protocol`` because both sides apply it: ``factoryctl datasets export`` (cloud) and
``factory-models train defect --dataset ID`` (domain_models), which may not import each other.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.captures import LABEL_GOOD, LABEL_SKIP

HOLDOUT_EVERY = 5
# domain_models.anomaly.data.MIN_TRAIN_GOOD: fewer good frames than this cannot train a model.
MIN_TRAIN_GOOD = 13


@dataclass(frozen=True)
class Placed:
    """One file of the export: where it goes and under which label."""

    name: str
    sha256: str
    label: str
    path: str


def effective_label(file: Mapping[str, Any], capture_label: str | None) -> str | None:
    """The label a file is exported under: its own, else the capture's; None when left out."""
    label = file.get("label") or capture_label
    return None if label in (None, LABEL_SKIP) else str(label)


def mvtec_layout(files: Sequence[Mapping[str, Any]], capture_label: str | None) -> list[Placed]:
    """Each exported file's place, in name order (``files``: the API's file dicts)."""
    chosen = [(f, effective_label(f, capture_label)) for f in sorted(files, key=lambda f: str(f["name"]))]
    labelled = [(f, label) for f, label in chosen if label is not None]
    holdout = any(label != LABEL_GOOD for _f, label in labelled)
    placed: list[Placed] = []
    goods = 0
    for file, label in labelled:
        if label == LABEL_GOOD:
            goods += 1
            folder = "test/good" if holdout and goods % HOLDOUT_EVERY == 0 else "train/good"
        else:
            folder = f"test/{label}"
        placed.append(Placed(str(file["name"]), str(file["sha256"]), label, f"{folder}/{file['name']}"))
    return placed


def shortfall(placed: Sequence[Placed]) -> str | None:
    """Why the folder cannot train a model yet, or None when it can."""
    train_good = sum(1 for p in placed if p.path.startswith("train/good/"))
    if train_good >= MIN_TRAIN_GOOD:
        return None
    return (
        f"only {train_good} good frame(s) in train/good; 'factory-models train defect' needs at least "
        f"{MIN_TRAIN_GOOD}: label more frames good, or capture more"
    )


def write_folder(
    placed: Sequence[Placed],
    facts: Mapping[str, Any],
    target: Path,
    fetch: Callable[[Placed, Path], None],
) -> dict[str, Any]:
    """Fill ``target`` (absent or empty) with ``placed`` files and dataset.json; the facts written.

    ``fetch(item, path)`` writes one file (and refuses bytes that do not match ``item.sha256``).
    Everything lands under ``target.part`` first and is renamed only when every file arrived, so
    an interrupted or refused export never leaves a folder that looks complete.
    """
    partial = target.with_name(target.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        for item in placed:
            fetch(item, partial / item.path)
        written = {**facts, "files": [vars(p) for p in placed]}
        (partial / "dataset.json").write_text(json.dumps(written, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            target.rmdir()
        partial.replace(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return written


def write_hashed(chunks: Iterable[bytes], path: Path) -> str:
    """Write ``chunks`` to ``path`` (making its folder) as they arrive; the hex SHA-256 of the bytes."""
    digest = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as sink:
        for chunk in chunks:
            digest.update(chunk)
            sink.write(chunk)
    return digest.hexdigest()
