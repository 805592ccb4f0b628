"""The gateway's side of signed desired states: which statements it acts on, remembered on disk.

The highest revision acted on survives restarts (``<models_dir>/desired.json``, written before the
gateway acts), so a restart does not reopen the door to a statement replayed from before it.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

from edge_agent.durable import atomic_write
from protocol.desired_signing import Admitted, admit, statement_digest
from protocol.ota import DesiredRefusal, DesiredState
from protocol.signing import TrustStore

log = logging.getLogger(__name__)

FILE_NAME = "desired.json"


class DesiredGate:
    """Admits desired states by signature, expiry and revision; keeps the high-water mark."""

    def __init__(self, trust: TrustStore, folder: Path) -> None:
        self.trust = trust
        self._path = folder / FILE_NAME
        self.last: Admitted | None = self._read()

    @property
    def revision(self) -> int:
        """The highest revision acted on, 0 before the first."""
        return self.last.revision if self.last else 0

    def _read(self) -> Admitted | None:
        try:
            data = json.loads(self._path.read_bytes())
            return Admitted(revision=int(data["revision"]), digest=str(data["digest"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Unreadable means unknown: refusing everything would strand the gateway on its model
            # forever, so it starts from 0 and says so; the signature and expiry checks still hold.
            log.error("ota: %s unreadable (%s): the desired revision starts again from 0", self._path, exc)
            return None

    def admit(self, state: DesiredState, now: datetime) -> DesiredRefusal | None:
        """None, after recording ``state`` as acted on; else why it is refused."""
        refusal = admit(state, self.trust, self.last, now)
        if refusal is not None:
            return refusal
        admitted = Admitted(revision=state.revision, digest=statement_digest(state))
        if admitted != self.last:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(
                self._path, json.dumps({"revision": admitted.revision, "digest": admitted.digest}).encode()
            )
            self.last = admitted
        return None
