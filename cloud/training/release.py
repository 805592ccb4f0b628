"""A candidate made release: its manifest stamped with the run's lineage, then, when the cloud
holds a signing key (``training_signing_key``), signed and registered as ``factoryctl models push``
would register it: its files as model blobs, then the version through the registry service."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy.orm import Session

from cloud.auth.service import Principal, Role, audit
from cloud.config import CloudSettings
from cloud.db.models import ModelVersion
from cloud.db.training_models import TrainingRun
from cloud.registry.service import blob_status, create_version, put_chunk
from cloud.registry.store import ArtifactStore
from cloud.training.files import file_chunks
from cloud.training.trainer import CARD_NAME, Candidate
from protocol.manifest import Lineage
from protocol.signing import SignatureError, load_private_key, sign_manifest


def stamp(candidate: Candidate, run: TrainingRun, parent_version: str | None, cloud_url: str) -> Candidate:
    """The candidate with the run's lineage in its manifest (the dataset, the code version, the
    version it replaces) and its card's reproduce command naming the dataset, not the run's
    temporary folder. Written back to its files, so a download is what the registry would hold."""
    lineage = candidate.manifest.lineage or Lineage()
    lineage = lineage.model_copy(
        update={
            "dataset_id": run.dataset_id,
            "code_commit": (run.code_version or "")[:64] or None,
            "parent_version": parent_version,
        }
    )
    manifest = candidate.manifest.model_copy(update={"lineage": lineage})
    candidate.manifest_path.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    card = candidate.card
    if card is not None:
        data, out = candidate.folder.parent / "data", candidate.folder
        card = card.replace(f"--data {data}", f"--dataset {run.dataset_id} --cloud {cloud_url}")
        card = card.replace(f"--out {out}", "--out OUT")
        # Any other mention of the run's temporary folders (the card's data table) names the dataset.
        card = card.replace(str(data), f"dataset {run.dataset_id}").replace(str(out), "OUT")
        (candidate.folder / CARD_NAME).write_text(card, encoding="utf-8")
    return Candidate(candidate.folder, candidate.manifest_path, manifest, card, candidate.calibration)


def _upload(session: Session, store: ArtifactStore, path: Path) -> None:
    """``path`` as a model blob, resuming what the store holds of it already."""
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    size = path.stat().st_size
    status = blob_status(session, store, sha)
    held = status.received_bytes if status is not None else 0
    if status is not None and status.complete:
        return
    position = 0
    for chunk in file_chunks(path):
        end = position + len(chunk)
        if end > held:
            held = put_chunk(session, store, sha, size, held, chunk[max(held - position, 0) :]).received_bytes
        position = end


def sign_and_register(
    session: Session, settings: CloudSettings, models: ArtifactStore, candidate: Candidate, run: TrainingRun
) -> ModelVersion:
    """Sign with the cloud's key and register the version (audited as the run, for its requester)."""
    if not settings.training_signing_key:
        raise SignatureError("training_signing_key is not set: the candidate awaits a signature")
    try:
        key = load_private_key(Path(settings.training_signing_key))
    except SignatureError as exc:
        raise SignatureError(f"training_signing_key: {exc}") from None
    signature = sign_manifest(candidate.manifest, key)
    folder = candidate.folder
    for name in (candidate.manifest.artifact, *candidate.manifest.files):
        _upload(session, models, folder / name)
    actor = Principal(f"training-run:{run.id}", Role.operator)
    row, created = create_version(
        session, settings, candidate.manifest, signature, candidate.card, actor.name
    )
    if created:
        audit(
            session,
            actor,
            "model.create",
            f"{row.name}:{row.version}",
            sha256=row.sha256,
            training_run=run.id,
            requested_by=run.requested_by,
        )
    return row
