"""Signing and uploading a model release: the engineer's side of the registry.

The manifest's files (artifact and extras) go up first as content-addressed blobs, in chunks
that resume where the server's count says; then the signed manifest registers the version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from protocol.manifest import CARD_PROMPT_MARK, ModelManifest, sha256_file
from protocol.signing import ManifestSignature, load_private_key, sign_manifest

CHUNK_BYTES = 4 << 20
Progress = Callable[[str, int, int], None]


class PushError(Exception):
    """A push that cannot go on; the message says what to do."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def prepare_manifest(artifact: Path, manifest_path: Path, fill: bool) -> ModelManifest:
    """Read the manifest; with ``fill`` set its artifact name, sha256, size and file hashes from disk."""
    for path, what in ((manifest_path, "manifest"), (artifact, "artifact")):
        if not path.is_file():
            raise PushError(f"{what} {path} not found{_nearby(path)}")
    try:
        raw: dict[str, Any] = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise PushError(f"{manifest_path}: cannot read the manifest: {exc}") from None
    if fill:
        raw["artifact"] = artifact.name
        raw["sha256"] = sha256_file(artifact)
        raw["size_bytes"] = artifact.stat().st_size
        raw["files"] = {name: sha256_file(manifest_path.parent / name) for name in raw.get("files", {})}
    try:
        manifest = ModelManifest.model_validate(raw)
    except ValueError as exc:
        raise PushError(f"{manifest_path}: invalid manifest: {exc}") from None
    if manifest.sha256 != sha256_file(artifact) or manifest.size_bytes != artifact.stat().st_size:
        raise PushError(
            f"{artifact} does not match the manifest's sha256/size_bytes; pass --fill to compute them"
        )
    return manifest


def _nearby(path: Path) -> str:
    """'; beside it: a, b' when the folder exists, or which part of the path does not."""
    folder = path.parent
    if not folder.is_dir():
        return f" (no folder {folder})"
    names = sorted(p.name for p in folder.iterdir() if p.suffix == path.suffix)[:5]
    return f" (in {folder}: {', '.join(names)})" if names else f" ({folder} holds no {path.suffix} file)"


def unfilled_card_lines(card: str) -> list[str]:
    """The lines of a model card still marked as prompts to fill in (CARD_PROMPT_MARK)."""
    return [line.strip() for line in card.splitlines() if CARD_PROMPT_MARK in line]


def sign(manifest: ModelManifest, key_path: Path) -> ManifestSignature:
    """Sign with the engineer's private key file."""
    return sign_manifest(manifest, load_private_key(key_path))


def _check(response: httpx.Response, what: str) -> Any:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise PushError(f"{what}: HTTP {response.status_code}: {detail}", response.status_code)
    return response.json()


def upload_blob(client: httpx.Client, path: Path, sha256: str, progress: Progress | None = None) -> None:
    """Upload ``path`` as blob ``sha256``, resuming from what the server already holds."""
    size = path.stat().st_size
    status = client.get(f"/api/v1/blobs/{sha256}/status")
    held = 0
    if status.status_code == 200:
        body = status.json()
        if body["complete"]:
            if progress:
                progress(path.name, size, size)
            return
        held = body["received_bytes"]
    elif status.status_code != 404:
        _check(status, f"status of {path.name}")
    with path.open("rb") as fh:
        fh.seek(held)
        while held < size:
            chunk = fh.read(CHUNK_BYTES)
            body = _check(
                client.put(f"/api/v1/blobs/{sha256}", params={"size": size, "offset": held}, content=chunk),
                f"upload of {path.name} at byte {held}",
            )
            held = body["received_bytes"]
            if progress:
                progress(path.name, held, size)


def push(
    client: httpx.Client,
    artifact: Path,
    manifest: ModelManifest,
    signature: ManifestSignature,
    card: str | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], bool]:
    """Upload the files and register the version; (version, created).

    A version the registry already holds is registered again without uploading anything: the
    registry answers at once that it is identical, or what differs (versions are immutable), instead
    of after every file went up again.
    """
    exists = client.get(f"/api/v1/models/{manifest.name}/versions/{manifest.version}")
    if exists.status_code == 404:
        upload_blob(client, artifact, manifest.sha256, progress)
        for name, sha in manifest.files.items():
            upload_blob(client, artifact.parent / name, sha, progress)
    else:
        _check(exists, f"looking up {manifest.name} {manifest.version}")
    body = {
        "manifest": manifest.model_dump(mode="json"),
        "signature": signature.model_dump(mode="json"),
        "card": card,
    }
    response = client.post("/api/v1/models/versions", json=body)
    return _check(response, f"registering {manifest.name} {manifest.version}"), response.status_code == 201
