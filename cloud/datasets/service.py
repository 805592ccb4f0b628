"""Captures and datasets: start captures on gateways, register what a gateway captured, read them.

A capture is a ``datasets`` row from the moment an operator asks (``requested``) until the
gateway registers its manifest (``complete``, ``stopped`` or ``refused``), which fills in the
files. Registration is idempotent on the capture id: the same manifest again changes nothing, a
different one is a 409, so a gateway retrying after a lost answer never doubles a dataset.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.auth.service import Principal, Role
from cloud.datasets.schemas import CaptureStart
from cloud.db.dataset_models import CaptureBlob, Dataset, DatasetFile
from cloud.db.models import Gateway
from cloud.registry.store import ArtifactStore
from protocol.captures import CaptureManifest
from protocol.manifest import TEXT_TASKS
from protocol.messages import utcnow

REQUESTED = "requested"
HOLDING_DATA = ("complete", "stopped")
UNLABELLED = "unlabelled"


class DatasetError(ValueError):
    """A request about captures the service refuses; ``status`` is the HTTP status that fits."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def new_capture_id() -> str:
    """A fresh capture id (protocol.captures.CaptureId)."""
    return f"cap-{uuid.uuid4().hex[:16]}"


def _slots(gateway: Gateway) -> dict[str, str]:
    """slot -> task of the models the gateway's latest birth listed."""
    return {str(m.get("slot")): str(m.get("task")) for m in gateway.models or [] if m.get("slot")}


def _targets(session: Session, body: CaptureStart) -> list[Gateway]:
    """The gateways a capture start means; a 422 names what is missing and what exists."""
    if body.gateway is not None:
        gateway = session.get(Gateway, body.gateway)
        if gateway is None:
            known = session.scalars(select(Gateway.id).order_by(Gateway.id).limit(20)).all()
            raise DatasetError(
                422, f"gateway {body.gateway} never connected (known: {', '.join(known) or 'none'})"
            )
        candidates = [gateway]
    else:
        candidates = list(
            session.scalars(select(Gateway).where(Gateway.line == body.line).order_by(Gateway.id))
        )
        if not candidates:
            lines = session.scalars(select(Gateway.line).distinct().order_by(Gateway.line)).all()
            raise DatasetError(
                422, f"no gateway on line {body.line} (lines: {', '.join(str(x) for x in lines) or 'none'})"
            )
    chosen = [g for g in candidates if _slots(g).get(body.slot) not in (None, *TEXT_TASKS)]
    if not chosen:
        having = "; ".join(
            f"{g.id}: {', '.join(f'{s} ({t})' for s, t in sorted(_slots(g).items())) or 'no models reported'}"
            for g in candidates
        )
        raise DatasetError(
            422, f"slot {body.slot}: no camera slot of that name on the targeted gateway(s) ({having})"
        )
    return chosen


def start_captures(session: Session, body: CaptureStart, who: Principal) -> list[Dataset]:
    """One ``requested`` capture per targeted gateway; the caller stages and publishes the orders."""
    now = utcnow()
    rows = [
        Dataset(
            id=new_capture_id(),
            gateway_id=gateway.id,
            line=gateway.line or body.line or "",
            slot=body.slot,
            origin="operator",
            label=body.label,
            note=body.note,
            requested_by=who.name,
            requested_at=now,
            requested_frames=body.frames,
            max_bytes=body.byte_cap,
            status=REQUESTED,
            frames=0,
            total_bytes=0,
        )
        for gateway in _targets(session, body)
    ]
    session.add_all(rows)
    session.flush()
    return rows


def fingerprint(manifest: CaptureManifest) -> str:
    """SHA-256 of the manifest's canonical JSON: the same registration twice has the same one."""
    return hashlib.sha256(manifest.model_dump_json().encode()).hexdigest()


def _check_registrant(manifest: CaptureManifest, who: Principal) -> None:
    if who.role is Role.gateway and who.gateway_id != manifest.gateway_id:
        raise DatasetError(
            403,
            f"token {who.name} is bound to gateway {who.gateway_id}; it cannot register a capture of "
            f"gateway {manifest.gateway_id}",
        )


def _check_files_held(session: Session, store: ArtifactStore, manifest: CaptureManifest) -> None:
    shas = {f.sha256 for f in manifest.files}
    held = set(
        session.scalars(
            select(CaptureBlob.sha256).where(CaptureBlob.sha256.in_(shas), CaptureBlob.complete.is_(True))
        )
    )
    missing = sorted(f.name for f in manifest.files if f.sha256 not in held or not store.exists(f.sha256))
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise DatasetError(422, f"capture {manifest.capture_id}: files not uploaded yet: {shown}")


def register_capture(
    session: Session, store: ArtifactStore, manifest: CaptureManifest, who: Principal
) -> tuple[Dataset, bool]:
    """Store a gateway's capture manifest as the dataset's files; (row, created or filled in).

    Refused (403) for a gateway token of another gateway, (409) when the capture id is another
    gateway's, another slot's, or already registered with other content, (422) while a file is
    not in the capture store.
    """
    _check_registrant(manifest, who)
    digest = fingerprint(manifest)
    row = session.get(Dataset, manifest.capture_id, with_for_update=True)
    if row is not None:
        if row.gateway_id != manifest.gateway_id or row.slot != manifest.slot:
            raise DatasetError(
                409,
                f"capture {manifest.capture_id} was asked of gateway {row.gateway_id} slot {row.slot}, "
                f"not {manifest.gateway_id} slot {manifest.slot}",
            )
        if row.fingerprint == digest:
            return row, False
        if row.status != REQUESTED:
            raise DatasetError(
                409, f"capture {manifest.capture_id} is already registered ({row.status}) with other content"
            )
    _check_files_held(session, store, manifest)
    if row is None:
        row = Dataset(
            id=manifest.capture_id,
            gateway_id=manifest.gateway_id,
            slot=manifest.slot,
            origin=manifest.origin,
            label=manifest.label,
            note=manifest.note,
            requested_by=manifest.requested_by,
            requested_at=manifest.started_at,
            requested_frames=manifest.requested_frames,
            max_bytes=manifest.max_bytes,
        )
        session.add(row)
    row.line, row.station = manifest.line, manifest.station
    row.status, row.reason = manifest.status, manifest.reason
    row.started_at, row.ended_at = manifest.started_at, manifest.ended_at
    row.frames, row.total_bytes = len(manifest.files), manifest.bytes
    row.model = manifest.model.model_dump(mode="json") if manifest.model else None
    row.registered_at, row.fingerprint = utcnow(), digest
    session.flush()
    session.add_all(
        DatasetFile(dataset_id=row.id, **f.model_dump(include=set(_FILE_FIELDS))) for f in manifest.files
    )
    session.flush()
    return row, True


_FILE_FIELDS = ("name", "sha256", "size_bytes", "captured_at", "source", "frame", "model_label", "score")


def get_dataset(session: Session, dataset_id: str) -> Dataset:
    """The capture ``dataset_id``; 404 naming it otherwise."""
    row = session.get(Dataset, dataset_id)
    if row is None:
        raise DatasetError(404, f"no capture or dataset {dataset_id}")
    return row


def label_counts(session: Session, dataset_ids: list[str]) -> dict[str, dict[str, int]]:
    """dataset id -> {label: files}, files without a label of their own counted as 'unlabelled'."""
    counts: dict[str, dict[str, int]] = {i: {} for i in dataset_ids}
    rows = session.execute(
        select(DatasetFile.dataset_id, DatasetFile.label, func.count())
        .where(DatasetFile.dataset_id.in_(dataset_ids))
        .group_by(DatasetFile.dataset_id, DatasetFile.label)
    )
    for dataset_id, label, count in rows:
        counts[dataset_id][label or UNLABELLED] = int(count)
    return counts


def apply_labels(
    session: Session, row: Dataset, labels: dict[str, str | None], who: Principal
) -> tuple[int, dict[str, Any]]:
    """Set the label of each named file (None clears it), all or nothing; (files changed, the
    changes for the audit log: file -> [before, after])."""
    if row.status not in HOLDING_DATA:
        raise DatasetError(409, f"capture {row.id} is {row.status}: it holds no files to label")
    files = {
        f.name: f
        for f in session.scalars(
            select(DatasetFile)
            .where(DatasetFile.dataset_id == row.id, DatasetFile.name.in_(labels))
            .with_for_update()
        )
    }
    unknown = sorted(set(labels) - set(files))
    if unknown:
        shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        raise DatasetError(422, f"dataset {row.id} has no file {shown}; nothing was labelled")
    now = utcnow()
    changes: dict[str, Any] = {}
    for name, label in sorted(labels.items()):
        file = files[name]
        if file.label == label:
            continue
        changes[name] = [file.label, label]
        file.label, file.labelled_by, file.labelled_at = label, who.name, now
    session.flush()
    return len(changes), changes
