"""Model releases for the cloud tests: signed manifests of fake artifacts, put in the registry, and a
desired-state publisher that records instead of publishing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker
from cloud.ota.ticks import tick_all
from cloud.registry.service import create_version, put_chunk
from cloud.registry.store import LocalStore
from protocol.manifest import ModelManifest
from protocol.messages import ModelRef
from protocol.ota import DesiredState
from protocol.signing import ManifestSignature, sign_manifest

MANIFEST_BASE = {
    "name": "defect-cnn",
    "task": "defect",
    "inputs": [{"name": "input", "shape": ["batch", 3, 64, 64]}],
    "outputs": [{"name": "probs", "shape": ["batch", 2]}],
    "preprocessing": {"resize": [64, 64]},
    "labels": ["ok", "scratch"],
    "good_label": "ok",
    "metrics": {"accuracy": 0.97, "recall_scratch": 0.95},
    "created_at": "2026-11-29T12:00:00+00:00",
}


@dataclass(frozen=True)
class Release:
    """A model version on disk: artifact, manifest file, parsed manifest and its signature."""

    artifact: Path
    manifest_path: Path
    manifest: ModelManifest
    signature: ManifestSignature

    @property
    def ref(self) -> ModelRef:
        return ModelRef(name=self.manifest.name, version=self.manifest.version, sha256=self.manifest.sha256)


def make_release(
    folder: Path, version: str, key: Ed25519PrivateKey, payload: bytes | None = None, name: str = "defect-cnn"
) -> Release:
    """Write a fake ONNX artifact (bytes; the registry never parses it) and its signed manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    data = payload if payload is not None else f"onnx-bytes {name} {version}".encode() * 50
    artifact = folder / f"{name}-{version}.onnx"
    artifact.write_bytes(data)
    raw = {
        **MANIFEST_BASE,
        "name": name,
        "version": version,
        "artifact": artifact.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "lineage": {"parent_version": None, "data_sha256": "cd" * 32, "code_commit": "abc1234"},
    }
    manifest_path = folder / f"{name}-{version}.manifest.json"
    manifest_path.write_text(json.dumps(raw))
    manifest = ModelManifest.model_validate(raw)
    return Release(artifact, manifest_path, manifest, sign_manifest(manifest, key))


def register(settings: CloudSettings, release: Release) -> None:
    """Put a release in the registry through the service functions (no HTTP)."""
    engine = make_engine(settings.db_url)
    try:
        store = LocalStore(Path(settings.artifact_dir))
        data = release.artifact.read_bytes()
        with make_sessionmaker(engine).begin() as session:
            put_chunk(session, store, release.manifest.sha256, len(data), 0, data)
            create_version(session, settings, release.manifest, release.signature, None, "test")
    finally:
        engine.dispose()


def tick(settings: CloudSettings, publisher: RecordingPublisher) -> None:
    """One beat of the rollout engine on ``settings``' database."""
    engine = make_engine(settings.db_url)
    try:
        tick_all(make_sessionmaker(engine), settings, publisher)
    finally:
        engine.dispose()


class RecordingPublisher:
    """A DesiredPublisher for API tests that records instead of publishing."""

    def __init__(self) -> None:
        self.published: list[DesiredState] = []

    def publish(self, states: Sequence[DesiredState]) -> None:
        self.published.extend(states)
