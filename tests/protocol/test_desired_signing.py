"""Desired states as signed statements: what admit() lets through and what it names as refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from protocol.desired_signing import Admitted, admit, sign_desired, statement_digest
from protocol.manifest import ModelManifest
from protocol.messages import decode, encode
from protocol.ota import DesiredState, ModelOffer
from protocol.signing import TrustStore, generate_private_key, key_id, sign_manifest
from tests.support.releases import MANIFEST_BASE

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
MANIFEST = ModelManifest.model_validate(
    {**MANIFEST_BASE, "version": "1.0.0", "artifact": "m.onnx", "sha256": "a" * 64, "size_bytes": 10}
)
CLOUD = generate_private_key()
TRUST = TrustStore([CLOUD.public_key()])


def _statement(
    revision: int = 5, downgrade: bool = False, ttl: timedelta = timedelta(hours=1)
) -> DesiredState:
    offer = ModelOffer(
        manifest=MANIFEST,
        signature=sign_manifest(MANIFEST, generate_private_key()),
        artifact_url="http://cloud/a.onnx",
        allow_downgrade=downgrade,
    )
    unsigned = DesiredState(
        gateway_id="gw-1", revision=revision, slots={"defect": offer}, issued_at=NOW, expires_at=NOW + ttl
    )
    return sign_desired(unsigned, CLOUD)


@given(st.integers(1, 10**9), st.booleans())
def test_a_signed_statement_survives_the_wire_and_is_admitted(revision: int, downgrade: bool) -> None:
    state = _statement(revision, downgrade)
    received = decode(DesiredState, encode(state))
    assert received == state
    assert admit(received, TRUST, None, NOW) is None


def test_every_field_is_under_the_signature() -> None:
    state = _statement(downgrade=False)
    offer = state.slots["defect"].model_copy(update={"allow_downgrade": True})
    for edited in (
        state.model_copy(update={"slots": {"defect": offer}}),
        state.model_copy(update={"revision": 6}),
        state.model_copy(update={"expires_at": NOW + timedelta(days=365)}),
        state.model_copy(update={"gateway_id": "gw-2"}),
    ):
        refusal = admit(edited, TRUST, None, NOW)
        assert refusal is not None
        assert refusal.reason == "forged", refusal


def test_refusals_name_their_reason() -> None:
    state = _statement(revision=5)
    last = Admitted(revision=5, digest=statement_digest(state))
    cases = {
        "unsigned": (state.model_copy(update={"signature": None}), None, NOW),
        "stale": (state, None, NOW + timedelta(hours=1)),
        "replayed": (_statement(revision=4), last, NOW),
    }
    for reason, (statement, seen, when) in cases.items():
        refusal = admit(statement, TRUST, seen, when)
        assert (refusal.reason if refusal else None) == reason, refusal
    # Equal revision: the same statement delivered again is admitted, another one is not.
    assert admit(state, TRUST, last, NOW) is None
    other = admit(_statement(revision=5, downgrade=True), TRUST, last, NOW)
    assert other is not None
    assert other.reason == "replayed"
    assert admit(_statement(revision=6), TRUST, last, NOW) is None


def test_a_revoked_or_unknown_key_is_refused() -> None:
    state = _statement()
    revoked = admit(state, TrustStore([CLOUD.public_key()], [key_id(CLOUD.public_key())]), None, NOW)
    assert revoked is not None
    assert "revoked" in revoked.message
    unknown = admit(state, TrustStore([generate_private_key().public_key()]), None, NOW)
    assert unknown is not None
    assert "not trusted" in unknown.message
