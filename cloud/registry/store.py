"""Artifact stores: content-addressed bytes by SHA-256, in a local folder or an S3 bucket.

Uploads are resumable: bytes are appended to a partial object at a given offset, and the object
becomes readable under its hash only once the whole content hashes right.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from cloud.config import CloudSettings
from protocol.manifest import sha256_file

CHUNK = 1 << 20


class StoreError(ValueError):
    """An upload that does not fit (wrong offset, too many bytes, wrong hash); the message says which."""


class ArtifactStore(Protocol):
    """What the registry needs from a place that keeps bytes."""

    def received(self, sha256: str) -> int:
        """How many bytes of an unfinished upload are held (0 if none)."""

    def append(self, sha256: str, offset: int, data: bytes, size: int) -> int:
        """Write ``data`` at ``offset`` of the partial upload; return the bytes now held."""

    def finish(self, sha256: str) -> None:
        """Check the partial upload hashes to ``sha256`` and publish it; StoreError otherwise."""

    def exists(self, sha256: str) -> bool:
        """Whether the finished object is present."""

    def read(self, sha256: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``[start, end]`` (inclusive) of a finished object, in chunks."""


class LocalStore:
    """A folder: ``<dir>/<sha[:2]>/<sha>`` for finished objects, ``<dir>/partial/<sha>`` for uploads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "partial").mkdir(parents=True, exist_ok=True)

    def _final(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def _partial(self, sha256: str) -> Path:
        return self.root / "partial" / sha256

    def received(self, sha256: str) -> int:
        part = self._partial(sha256)
        return part.stat().st_size if part.exists() else 0

    def append(self, sha256: str, offset: int, data: bytes, size: int) -> int:
        held = self.received(sha256)
        if offset != held:
            raise StoreError(f"upload of {sha256[:12]}: chunk at offset {offset}, but {held} bytes are held")
        if held + len(data) > size:
            raise StoreError(f"upload of {sha256[:12]}: {held + len(data)} bytes exceed the declared {size}")
        with self._partial(sha256).open("ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return held + len(data)

    def finish(self, sha256: str) -> None:
        part = self._partial(sha256)
        actual = sha256_file(part)
        if actual != sha256:
            part.unlink()  # a corrupt upload must start again from zero
            raise StoreError(f"upload hashes to {actual}, not {sha256}; upload it again")
        final = self._final(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, final)

    def exists(self, sha256: str) -> bool:
        return self._final(sha256).is_file()

    def read(self, sha256: str, start: int, end: int) -> Iterator[bytes]:
        with self._final(sha256).open("rb") as fh:
            fh.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = fh.read(min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk


class S3Store:
    """An S3-compatible bucket (boto3, imported lazily). Partial uploads are kept as numbered parts
    of the local staging folder and sent with one put once complete: simple, and S3 never holds
    an object whose hash is wrong."""

    def __init__(self, settings: CloudSettings) -> None:
        import boto3  # type: ignore[import-not-found,unused-ignore]  # optional dependency

        if not settings.s3_bucket:
            raise ValueError("artifact_store='s3' needs s3_bucket")
        self._s3: Any = boto3.client("s3", endpoint_url=settings.s3_endpoint_url)
        self._bucket = settings.s3_bucket
        self._prefix = settings.s3_prefix
        self._staging = LocalStore(Path(settings.artifact_dir))

    def received(self, sha256: str) -> int:
        return self._staging.received(sha256)

    def append(self, sha256: str, offset: int, data: bytes, size: int) -> int:
        return self._staging.append(sha256, offset, data, size)

    def finish(self, sha256: str) -> None:
        self._staging.finish(sha256)
        path = self._staging._final(sha256)
        self._s3.upload_file(str(path), self._bucket, self._prefix + sha256)
        path.unlink()

    def exists(self, sha256: str) -> bool:
        try:
            self._s3.head_object(Bucket=self._bucket, Key=self._prefix + sha256)
        except Exception:  # noqa: BLE001  # botocore's ClientError; not importable without boto3
            return False
        return True

    def read(self, sha256: str, start: int, end: int) -> Iterator[bytes]:
        obj = self._s3.get_object(
            Bucket=self._bucket, Key=self._prefix + sha256, Range=f"bytes={start}-{end}"
        )
        yield from obj["Body"].iter_chunks(CHUNK)


def make_store(settings: CloudSettings) -> ArtifactStore:
    """The artifact store the settings name."""
    if settings.artifact_store == "s3":
        return S3Store(settings)
    return LocalStore(Path(settings.artifact_dir))
