"""Ed25519 signatures over model manifests (and, in protocol/desired_signing.py, desired states).

The engineer's CLI signs; gateways verify against the public keys they pin. The manifest carries
the artifact's (and every extra file's) SHA-256 and the monotonic version, so one signature
covers the whole release. The cloud never holds a model key, so it cannot forge a model that
gateways accept; the key it signs desired states with only says which signed model goes where.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import Field

from protocol.manifest import ModelManifest
from protocol.messages import WireModel

KeyId = str


class SignatureError(ValueError):
    """A signature that does not verify, or a key that is unknown or revoked; the message says which."""


class ManifestSignature(WireModel):
    """A detached signature over a manifest's canonical bytes."""

    algorithm: Literal["ed25519"] = "ed25519"
    key_id: KeyId = Field(pattern=r"^[0-9a-f]{16}$", description="First 16 hex of sha256(raw public key)")
    signature: str = Field(min_length=1, max_length=200, description="Base64 of the 64-byte signature")


def canonical_bytes(manifest: ModelManifest) -> bytes:
    """The bytes that are signed: sorted-key compact JSON, independent of field order or spacing."""
    return json.dumps(manifest.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> KeyId:
    """A short, stable name for a public key."""
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def sign_manifest(manifest: ModelManifest, private_key: Ed25519PrivateKey) -> ManifestSignature:
    """Sign ``manifest`` with the engineer's key."""
    return sign_bytes(canonical_bytes(manifest), private_key)


def sign_bytes(data: bytes, private_key: Ed25519PrivateKey) -> ManifestSignature:
    """A detached signature over ``data``."""
    signature = private_key.sign(data)
    return ManifestSignature(
        key_id=key_id(private_key.public_key()), signature=base64.b64encode(signature).decode()
    )


class TrustStore:
    """The public keys a gateway accepts, minus the revoked ones."""

    def __init__(self, keys: Iterable[Ed25519PublicKey], revoked: Iterable[KeyId] = ()) -> None:
        self._keys: dict[KeyId, Ed25519PublicKey] = {key_id(k): k for k in keys}
        self.revoked: frozenset[KeyId] = frozenset(revoked)

    @property
    def key_ids(self) -> list[KeyId]:
        return sorted(self._keys)

    def verify(self, manifest: ModelManifest, signature: ManifestSignature) -> None:
        """Raise SignatureError unless a trusted, unrevoked key made ``signature`` over ``manifest``."""
        self.verify_bytes(
            canonical_bytes(manifest), signature, f"manifest {manifest.name} {manifest.version}"
        )

    def verify_bytes(self, data: bytes, signature: ManifestSignature, what: str) -> None:
        """Raise SignatureError unless a trusted, unrevoked key made ``signature`` over ``data``."""
        if signature.key_id in self.revoked:
            raise SignatureError(f"key {signature.key_id} is revoked")
        key = self._keys.get(signature.key_id)
        if key is None:
            raise SignatureError(
                f"key {signature.key_id} is not trusted (trusted: {', '.join(self.key_ids) or 'none'})"
            )
        try:
            raw = base64.b64decode(signature.signature, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("signature is not valid base64") from None
        try:
            key.verify(raw, data)
        except InvalidSignature:
            raise SignatureError(f"signature by key {signature.key_id} does not match {what}") from None


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read a PEM Ed25519 private key; SignatureError names the file when it is something else."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SignatureError(f"{path}: cannot read an Ed25519 private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a PEM Ed25519 public key; SignatureError names the file when it is something else."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise SignatureError(f"{path}: cannot read an Ed25519 public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"{path}: not an Ed25519 public key")
    return key


def trust_store_from(keys: Mapping[str, Path] | Iterable[Path], revoked: Iterable[KeyId] = ()) -> TrustStore:
    """A trust store from PEM public key files."""
    paths = keys.values() if isinstance(keys, Mapping) else keys
    return TrustStore([load_public_key(p) for p in paths], revoked)
