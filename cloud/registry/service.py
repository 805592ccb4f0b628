"""Registry logic: resumable blob uploads, immutable versions, and the offers sent to gateways."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.config import CloudSettings
from cloud.db.dataset_models import CaptureBlob
from cloud.db.models import Blob, GatewayReported, ModelVersion
from cloud.registry.store import ArtifactStore, StoreError
from protocol.manifest import ModelManifest
from protocol.messages import utcnow
from protocol.ota import ModelOffer
from protocol.signing import ManifestSignature, SignatureError, canonical_bytes, trust_store_from

log = logging.getLogger(__name__)


class RegistryError(ValueError):
    """A request the registry refuses; ``status`` is the HTTP status that fits."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class BlobStatus:
    """How far an upload got."""

    sha256: str
    size_bytes: int
    received_bytes: int
    complete: bool


# The table that tracks a store's uploads: model artifacts (``blobs``) or capture frames
# (``capture_blobs``), the same columns each.
BlobTable = type[Blob] | type[CaptureBlob]


def _blob_row(session: Session, table: BlobTable, sha256: str) -> Blob | CaptureBlob | None:
    return session.get(Blob, sha256) if table is Blob else session.get(CaptureBlob, sha256)


def blob_status(
    session: Session, store: ArtifactStore, sha256: str, table: BlobTable = Blob
) -> BlobStatus | None:
    """The upload state of ``sha256``, or None if it was never started."""
    row = _blob_row(session, table, sha256)
    if row is None:
        return None
    received = row.size_bytes if row.complete else store.received(sha256)
    return BlobStatus(sha256, row.size_bytes, received, row.complete)


def put_chunk(
    session: Session,
    store: ArtifactStore,
    sha256: str,
    size: int,
    offset: int,
    data: bytes,
    table: BlobTable = Blob,
) -> BlobStatus:
    """Append a chunk at ``offset``; the blob completes (hash checked) with its last byte."""
    row = _blob_row(session, table, sha256)
    if row is None:
        row = table(sha256=sha256, size_bytes=size, received_bytes=0, complete=False, created_at=utcnow())
        session.add(row)
    elif row.size_bytes != size:
        raise RegistryError(409, f"blob {sha256[:12]} was started with size {row.size_bytes}, not {size}")
    if row.complete:
        return BlobStatus(sha256, size, size, True)  # idempotent re-send of a finished upload
    try:
        held = store.append(sha256, offset, data, size)
        if held == size:
            store.finish(sha256)
            row.complete = True
    except StoreError as exc:
        raise RegistryError(409 if "offset" in str(exc) else 422, str(exc)) from None
    row.received_bytes = held
    return BlobStatus(sha256, size, held, row.complete)


def _fingerprint(manifest: ModelManifest, signature: ManifestSignature, card: str | None) -> str:
    digest = hashlib.sha256(canonical_bytes(manifest))
    digest.update(json.dumps(signature.model_dump(mode="json"), sort_keys=True).encode())
    digest.update((card or "").encode())
    return digest.hexdigest()


def _signature_warning(
    settings: CloudSettings, manifest: ModelManifest, sig: ManifestSignature
) -> str | None:
    # Early warning only: gateways enforce their own trust store, the cloud cannot vouch for one.
    if not settings.trusted_keys:
        return None
    try:
        trust_store_from([Path(p) for p in settings.trusted_keys]).verify(manifest, sig)
    except SignatureError as exc:
        return str(exc)
    return None


def _what_differs(
    existing: ModelVersion, manifest: ModelManifest, signature: ManifestSignature, card: str | None
) -> str:
    """Which part of a re-pushed version differs from the stored one, in the pusher's words."""
    parts = []
    if existing.sha256 != manifest.sha256:
        parts.append(f"artifact (stored sha256 {existing.sha256[:12]}..., pushed {manifest.sha256[:12]}...)")
    elif existing.manifest != manifest.model_dump(mode="json"):
        parts.append("manifest (same artifact)")
    if existing.signature != signature.model_dump(mode="json"):
        parts.append("signature (another key, or another manifest)")
    if (existing.card or "") != (card or ""):
        parts.append("model card" + (" (this push has none: pass the same --card)" if not card else ""))
    return " and ".join(parts) or "content"


def create_version(
    session: Session,
    settings: CloudSettings,
    manifest: ModelManifest,
    signature: ManifestSignature,
    card: str | None,
    actor: str,
) -> tuple[ModelVersion, bool]:
    """Register a version; (row, created). Same content again is a no-op, different content 409."""
    fingerprint = _fingerprint(manifest, signature, card)
    existing = session.scalar(
        select(ModelVersion).where(
            ModelVersion.name == manifest.name, ModelVersion.version == manifest.version
        )
    )
    if existing is not None:
        if existing.fingerprint == fingerprint:
            return existing, False
        raise RegistryError(
            409,
            f"model {manifest.name} version {manifest.version} already exists with a different "
            f"{_what_differs(existing, manifest, signature, card)}; versions are immutable: bump the "
            "version",
        )
    needed = {manifest.sha256: manifest.size_bytes, **{h: None for h in manifest.files.values()}}
    for sha, size in needed.items():
        blob = session.get(Blob, sha)
        if blob is None or not blob.complete:
            raise RegistryError(
                422, f"file {sha[:12]}... of {manifest.name} {manifest.version} is not uploaded yet"
            )
        if size is not None and blob.size_bytes != size:
            raise RegistryError(422, f"artifact is {blob.size_bytes} bytes, manifest says {size}")
    warning = _signature_warning(settings, manifest, signature)
    if warning:
        log.warning(
            "model %s %s: signature check against trusted_keys failed: %s",
            manifest.name,
            manifest.version,
            warning,
        )
    row = ModelVersion(
        name=manifest.name,
        version=manifest.version,
        task=manifest.task,
        sha256=manifest.sha256,
        size_bytes=manifest.size_bytes,
        manifest=manifest.model_dump(mode="json"),
        signature=signature.model_dump(mode="json"),
        fingerprint=fingerprint,
        card=card,
        signature_warning=warning,
        created_at=utcnow(),
        created_by=actor,
    )
    session.add(row)
    session.flush()
    return row, True


def blob_url(settings: CloudSettings, sha256: str) -> str:
    """Where a gateway downloads a blob (public by hash: see cloud/README.md, 'Artifact downloads')."""
    return f"{settings.public_url.rstrip('/')}/api/v1/blobs/{sha256}"


def offer_for(settings: CloudSettings, version: ModelVersion, allow_downgrade: bool = False) -> ModelOffer:
    """The desired-state entry that makes a gateway install ``version``."""
    manifest = ModelManifest.model_validate(version.manifest)
    return ModelOffer(
        manifest=manifest,
        signature=ManifestSignature.model_validate(version.signature),
        artifact_url=blob_url(settings, manifest.sha256),
        file_urls={name: blob_url(settings, sha) for name, sha in manifest.files.items()},
        allow_downgrade=allow_downgrade,
    )


def running_on(session: Session, name: str, version: str) -> list[str]:
    """Gateways whose reported state has ``name`` ``version`` active in some slot."""
    found = []
    for row in session.scalars(select(GatewayReported).order_by(GatewayReported.gateway_id)):
        for slot in row.slots.values():
            active = slot.get("active") or {}
            if active.get("name") == name and active.get("version") == version:
                found.append(row.gateway_id)
                break
    return found
