"""Desired states as signed statements, and the gateway's rules for admitting one.

The cloud signs each desired state with its desired-state key (not an engineer's model key: that
one says a model is good, this one says which gateway runs it). A gateway admits a statement only
if a key it pins made the signature, the statement has not expired, and its revision is above the
highest it admitted before (equal is the same statement delivered again). The rules are TUF's
answers to the attacks on an update channel: forged or edited statements (the signature), replay
and rollback (the revision), freeze (the expiry).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.ota import DesiredRefusal, DesiredState
from protocol.signing import SignatureError, TrustStore, sign_bytes


def desired_bytes(state: DesiredState) -> bytes:
    """The bytes that are signed: every field but the signature, sorted-key compact JSON."""
    data = state.model_dump(mode="json")
    data.pop("signature", None)
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def sign_desired(state: DesiredState, key: Ed25519PrivateKey) -> DesiredState:
    """``state`` with the cloud's signature over it."""
    unsigned = state.model_copy(update={"signature": None})
    return unsigned.model_copy(update={"signature": sign_bytes(desired_bytes(unsigned), key)})


def statement_digest(state: DesiredState) -> str:
    """SHA-256 of the signed bytes: tells the same statement delivered again from another one."""
    return hashlib.sha256(desired_bytes(state)).hexdigest()


@dataclass(frozen=True)
class Admitted:
    """The highest revision a gateway acted on and the digest of that statement."""

    revision: int
    digest: str


def admit(
    state: DesiredState, trust: TrustStore, last: Admitted | None, now: datetime
) -> DesiredRefusal | None:
    """None if the gateway may act on ``state``; else the refusal to report.

    Checked in this order so the report names the deepest problem: a forged statement is called
    forged even when it also claims an old revision.
    """
    revision = state.revision
    if state.signature is None:
        return DesiredRefusal(
            revision=revision, reason="unsigned", message=f"desired revision {revision} carries no signature"
        )
    try:
        trust.verify_bytes(desired_bytes(state), state.signature, f"desired revision {revision}")
    except SignatureError as exc:
        return DesiredRefusal(revision=revision, reason="forged", message=str(exc))
    if state.expires_at is None or now >= state.expires_at:
        expired = state.expires_at.isoformat() if state.expires_at else "no expiry"
        return DesiredRefusal(
            revision=revision,
            reason="stale",
            message=f"desired revision {revision} expired ({expired}); waiting for a fresh statement",
        )
    if last is not None and (
        revision < last.revision or (revision == last.revision and statement_digest(state) != last.digest)
    ):
        return DesiredRefusal(
            revision=revision,
            reason="replayed",
            message=f"desired revision {revision} is not above revision {last.revision}, already acted on",
        )
    return None
