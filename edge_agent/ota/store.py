"""Slot directories and the pointer file: what each slot runs, crash-safe.

Layout under ``models_dir``::

    <slot>/<version>-<sha8>/      one verified release per directory, never modified after rename
    <slot>/.staging/<sha256>/     downloads in progress (partial files survive a restart)
    <slot>/pointer.json           {"active": manifest path, "previous": ..., "trial": bool}
    <slot>/challenger.json        {"active": manifest path, "revision": n}: the shadow run's release

Every change of state is one ``os.replace`` of a fsynced file followed by a fsync of its
directory, so a ``kill -9`` or power cut at any instant leaves either the old pointer or the new
one on disk, and both name complete, verified release directories.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from edge_agent.durable import atomic_write, fsync_dir

log = logging.getLogger(__name__)

POINTER = "pointer.json"
CHALLENGER = "challenger.json"
REJECTED = "rejected.json"
STAGING = ".staging"


class StoreError(RuntimeError):
    """A slot store that cannot be read or written; the message names the file."""


@dataclass(frozen=True, slots=True)
class Pointer:
    """Which manifest a slot runs (``active``), which it ran before, and whether it is on trial.

    ``trial`` is True between the swap and the commit: a restart in that state means the new
    model never proved healthy, so the agent rolls back (as A/B boot loaders do).
    """

    active: str
    previous: str | None = None
    trial: bool = False
    revision: int = 0  # the desired revision that installed ``active``


class SlotStore:
    """The release directories and pointer of one slot."""

    def __init__(self, models_dir: Path, slot: str) -> None:
        self.slot = slot
        self.root = models_dir / slot
        self.root.mkdir(parents=True, exist_ok=True)

    # ---- pointer -------------------------------------------------------------------------
    def read(self) -> Pointer | None:
        """The current pointer, or None when the slot still runs the factory model."""
        path = self.root / POINTER
        try:
            data = json.loads(path.read_bytes())
            return Pointer(
                active=str(data["active"]), previous=data.get("previous"), trial=bool(data["trial"])
            )
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{path}: unreadable pointer ({exc}); restore it or delete it to fall back"
            ) from None

    def write(self, pointer: Pointer) -> None:
        """Atomically replace the pointer."""
        atomic_write(self.root / POINTER, json.dumps(asdict(pointer), sort_keys=True).encode())
        log.info("slot %s: pointer -> %s (trial=%s)", self.slot, pointer.active, pointer.trial)

    # ---- challenger ----------------------------------------------------------------------
    def read_challenger(self) -> Path | None:
        """The manifest of the installed challenger (a verified release directory), if any."""
        try:
            data = json.loads((self.root / CHALLENGER).read_bytes())
            return Path(str(data["active"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            # Only a shadow run is lost: the slot's model does not depend on this file.
            log.warning("slot %s: unreadable %s (%s); no challenger", self.slot, CHALLENGER, exc)
            return None

    def write_challenger(self, manifest: Path, revision: int) -> None:
        """Atomically name the challenger (after its release directory is in place)."""
        data = {"active": str(manifest), "revision": revision}
        atomic_write(self.root / CHALLENGER, json.dumps(data, sort_keys=True).encode())
        log.info("slot %s: challenger -> %s", self.slot, manifest)

    def clear_challenger(self) -> None:
        """No challenger any more (removed, or promoted: the pointer names it now)."""
        path = self.root / CHALLENGER
        if path.exists():
            path.unlink()
            fsync_dir(self.root)

    # ---- releases ------------------------------------------------------------------------
    def staging(self, sha256: str) -> Path:
        """The download folder for a release; kept across restarts so downloads resume."""
        path = self.root / STAGING / sha256
        path.mkdir(parents=True, exist_ok=True)
        return path

    def release_dir(self, version: str, sha256: str) -> Path:
        """Where a verified release of ``version`` lives."""
        return self.root / f"{version}-{sha256[:8]}"

    def install(self, staged: Path, version: str, sha256: str) -> Path:
        """Move a verified staging folder to its release directory (one atomic rename).

        An existing directory for the same version and hash was verified when it was made, so it
        is kept and the staged copy discarded.
        """
        target = self.release_dir(version, sha256)
        if target.exists():
            shutil.rmtree(staged, ignore_errors=True)
        else:
            os.replace(staged, target)
            fsync_dir(self.root)
        return target

    def discard_staging(self, sha256: str) -> None:
        """Drop a download (after a verification failure its bytes are useless)."""
        shutil.rmtree(self.root / STAGING / sha256, ignore_errors=True)

    def prune(self, keep: set[Path]) -> None:
        """Delete release directories the pointer no longer names (and stale staging); the
        challenger's release is kept."""
        challenger = self.read_challenger()
        if challenger is not None:
            keep = keep | {challenger.resolve().parent}
        for child in self.root.iterdir():
            if child.is_dir() and child.name != STAGING and child.resolve() not in keep:
                shutil.rmtree(child, ignore_errors=True)

    # ---- rejections ----------------------------------------------------------------------
    def rejected(self) -> dict[str, int]:
        """sha256 -> the desired revision at which that release was rejected."""
        try:
            data = json.loads((self.root / REJECTED).read_bytes())
        except (FileNotFoundError, ValueError):
            return {}
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def reject(self, sha256: str, revision: int) -> None:
        """Remember a failed release so the same desired revision does not retry it forever (a newer
        revision naming the same release tries again)."""
        data = self.rejected()
        data[sha256] = revision
        atomic_write(self.root / REJECTED, json.dumps(data, sort_keys=True).encode())
