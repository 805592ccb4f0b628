"""The cloud's desired-state key: which signed model runs where is said under this signature.

One key per deployment, shared by the API and the Celery worker (both stage desired states).
Unset, it is made on first use beside the artifact store, as an SSH host key is; the public half
is written beside it for gateways to pin (``factory-cloud desired-key --public-out``).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.config import CloudSettings
from protocol.signing import (
    generate_private_key,
    key_id,
    load_private_key,
    private_key_pem,
    public_key_pem,
)

log = logging.getLogger(__name__)
DEFAULT_NAME = "desired-signing.pem"
_lock = threading.Lock()
_loaded: dict[Path, Ed25519PrivateKey] = {}


def key_path(settings: CloudSettings) -> Path:
    """Where the private key is (or will be made)."""
    if settings.desired_signing_key:
        return Path(settings.desired_signing_key)
    return Path(settings.artifact_dir).resolve().parent / DEFAULT_NAME


def desired_key(settings: CloudSettings) -> Ed25519PrivateKey:
    """The private key, read once per process; made (mode 0600) when the default path has none."""
    path = key_path(settings).resolve()
    with _lock:
        if path in _loaded:
            return _loaded[path]
        if not path.exists() and not settings.desired_signing_key:
            _create(path)
        key = load_private_key(path)
        _loaded[path] = key
        return key


def _create(path: Path) -> None:
    key = generate_private_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_key_pem(key))
    try:
        # A hard link appears whole or not at all, and fails if the name exists: the API and the
        # worker starting together make one key, and neither reads a half-written file.
        os.link(tmp, path)
    except FileExistsError:
        return
    finally:
        tmp.unlink()
    log.warning(
        "made the desired-state key %s (key id %s): gateways must pin its public key "
        "(factory-cloud desired-key --public-out FILE, then ota.desired_keys)",
        path,
        key_id(key.public_key()),
    )


def public_key_file(settings: CloudSettings, out: Path | None = None) -> Path:
    """Write the public key as PEM to ``out`` (default: beside the private key, ``.pub``)."""
    target = out or key_path(settings).with_suffix(".pub")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(public_key_pem(desired_key(settings).public_key()))
    return target
