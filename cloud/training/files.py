"""Where training runs keep their candidates' files, and how a dataset becomes a training folder.

A candidate awaiting its signature is not a release: its files go to a content-addressed store of
their own (``<artifact_dir>/training``, or ``<s3_prefix>training/``), read only through the runs
API, not to the model blobs that are public by hash. The files of a signed candidate go to the
model blobs too, as a push's would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.config import CloudSettings
from cloud.db.dataset_models import Dataset, DatasetFile
from cloud.registry.store import CHUNK, ArtifactStore, make_store
from protocol.dataset_layout import Placed, mvtec_layout, write_folder, write_hashed

TRAINING_FOLDER = "training"


def make_training_store(settings: CloudSettings) -> ArtifactStore:
    """The training store: ``<artifact_dir>/training``, or ``<s3_prefix>training/`` in the bucket."""
    return make_store(
        settings.model_copy(
            update={
                "artifact_dir": str(Path(settings.artifact_dir) / TRAINING_FOLDER),
                "s3_prefix": f"{settings.s3_prefix}{TRAINING_FOLDER}/",
            }
        )
    )


def file_chunks(path: Path) -> Iterator[bytes]:
    """``path``'s bytes in the stores' chunk size."""
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk


def keep_file(store: ArtifactStore, path: Path) -> dict[str, Any]:
    """Put ``path`` into ``store`` under its SHA-256 (once: a file held already is not sent again)."""
    digest = hashlib.sha256()
    for chunk in file_chunks(path):
        digest.update(chunk)
    sha, size = digest.hexdigest(), path.stat().st_size
    if not store.exists(sha):
        # Resume a partial object an interrupted run left: the store takes bytes only at its end.
        held = store.received(sha)
        position = 0
        for chunk in file_chunks(path):
            end = position + len(chunk)
            if end > held:
                held = store.append(sha, held, chunk[max(held - position, 0) :], size)
            position = end
        store.finish(sha)
    return {"sha256": sha, "size_bytes": size}


def dataset_facts(dataset: Dataset) -> dict[str, Any]:
    """What ``dataset.json`` says of the dataset (as ``factoryctl datasets export`` writes it)."""
    return {
        "id": dataset.id,
        "line": dataset.line,
        "gateway_id": dataset.gateway_id,
        "slot": dataset.slot,
        "label": dataset.label,
        "note": dataset.note,
        "requested_by": dataset.requested_by,
        "frames": dataset.frames,
        "model": dataset.model,
    }


def placed_files(session: Session, dataset: Dataset) -> tuple[list[Placed], dict[str, int]]:
    """Each of the dataset's frames in the MVTec layout, by its label now; and each one's size."""
    files = list(
        session.scalars(
            select(DatasetFile).where(DatasetFile.dataset_id == dataset.id).order_by(DatasetFile.name)
        )
    )
    listing = [{"name": f.name, "sha256": f.sha256, "label": f.label} for f in files]
    return mvtec_layout(listing, dataset.label), {f.sha256: f.size_bytes for f in files}


def write_training_folder(
    captures: ArtifactStore, placed: list[Placed], sizes: dict[str, int], facts: dict[str, Any], target: Path
) -> dict[str, Any]:
    """The MVTec folder ``factory-models train defect --data`` reads, from the capture store's
    bytes, each file checked against its SHA-256; the facts written to dataset.json."""

    def fetch(item: Placed, path: Path) -> None:
        if not captures.exists(item.sha256):
            raise ValueError(f"frame {item.name} ({item.sha256[:12]}...) is missing from the capture store")
        got = write_hashed(captures.read(item.sha256, 0, sizes[item.sha256] - 1), path)
        if got != item.sha256:
            raise ValueError(f"frame {item.name} hashes to {got}, the dataset says {item.sha256}")

    return write_folder(placed, facts, target, fetch)
