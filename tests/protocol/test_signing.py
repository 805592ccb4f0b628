"""Manifest signatures: only a trusted, unrevoked key over the exact manifest verifies."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.manifest import ModelManifest
from protocol.messages import decode, encode
from protocol.ota import DesiredState, ModelOffer, ReportedState, SlotHealth, SlotReport
from protocol.signing import (
    SignatureError,
    TrustStore,
    generate_private_key,
    key_id,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_pem,
    sign_manifest,
)


def _manifest(version: str = "1.0.0", sha: str = "a" * 64) -> ModelManifest:
    return ModelManifest.model_validate(
        {
            "name": "defect-cnn",
            "version": version,
            "task": "defect",
            "artifact": "m.onnx",
            "sha256": sha,
            "size_bytes": 10,
            "inputs": [{"name": "image", "shape": ["batch", 3, 8, 8]}],
            "outputs": [{"name": "probs", "shape": ["batch", 2]}],
            "preprocessing": {"resize": [8, 8]},
            "labels": ["good", "scratch"],
            "good_label": "good",
            "created_at": datetime(2026, 11, 1, tzinfo=UTC),
        }
    )


def test_trusted_key_verifies() -> None:
    key = generate_private_key()
    manifest = _manifest()
    TrustStore([key.public_key()]).verify(manifest, sign_manifest(manifest, key))


def test_changed_artifact_hash_breaks_the_signature() -> None:
    key = generate_private_key()
    signature = sign_manifest(_manifest(), key)
    with pytest.raises(SignatureError, match="does not match"):
        TrustStore([key.public_key()]).verify(_manifest(sha="b" * 64), signature)


def test_changed_version_breaks_the_signature() -> None:
    key = generate_private_key()
    signature = sign_manifest(_manifest("1.0.0"), key)
    with pytest.raises(SignatureError, match="does not match"):
        TrustStore([key.public_key()]).verify(_manifest("9.0.0"), signature)


def test_wrong_key_is_not_trusted() -> None:
    signer, pinned = generate_private_key(), generate_private_key()
    manifest = _manifest()
    with pytest.raises(SignatureError, match="is not trusted"):
        TrustStore([pinned.public_key()]).verify(manifest, sign_manifest(manifest, signer))


def test_revoked_key_is_refused_even_if_pinned() -> None:
    key = generate_private_key()
    manifest = _manifest()
    store = TrustStore([key.public_key()], revoked=[key_id(key.public_key())])
    with pytest.raises(SignatureError, match="revoked"):
        store.verify(manifest, sign_manifest(manifest, key))


def test_garbled_signature_is_refused() -> None:
    key = generate_private_key()
    manifest = _manifest()
    signature = sign_manifest(manifest, key).model_copy(update={"signature": "!!!not base64"})
    with pytest.raises(SignatureError, match="base64"):
        TrustStore([key.public_key()]).verify(manifest, signature)


def test_keys_round_trip_through_pem_files(tmp_path: Path) -> None:
    key = generate_private_key()
    (tmp_path / "k.pem").write_bytes(private_key_pem(key))
    (tmp_path / "k.pub").write_bytes(public_key_pem(key.public_key()))
    manifest = _manifest()
    signature = sign_manifest(manifest, load_private_key(tmp_path / "k.pem"))
    TrustStore([load_public_key(tmp_path / "k.pub")]).verify(manifest, signature)
    (tmp_path / "bad.pub").write_text("not a key")
    with pytest.raises(SignatureError, match="bad.pub"):
        load_public_key(tmp_path / "bad.pub")


@given(st.integers(1, 10**6), st.booleans())
def test_ota_messages_round_trip(revision: int, downgrade: bool) -> None:
    key = generate_private_key()
    manifest = _manifest()
    now = datetime(2026, 11, 2, tzinfo=UTC)
    desired = DesiredState(
        gateway_id="gw-1",
        revision=revision,
        rollout_id="r1",
        slots={
            "defect": ModelOffer(
                manifest=manifest,
                signature=sign_manifest(manifest, key),
                artifact_url="http://cloud/a.onnx",
                allow_downgrade=downgrade,
            )
        },
        issued_at=now,
    )
    assert decode(DesiredState, encode(desired)) == desired
    reported = ReportedState(
        gateway_id="gw-1",
        desired_revision=revision,
        slots={
            "defect": SlotReport(
                active=None, phase="health_window", health=SlotHealth(inferences=3, errors=0, defect_rate=0.1)
            )
        },
        timestamp=now,
    )
    assert decode(ReportedState, encode(reported)) == reported
    # The signature inside a decoded message still verifies: canonical bytes survive the wire.
    TrustStore([key.public_key()]).verify(
        decode(DesiredState, encode(desired)).slots["defect"].manifest, desired.slots["defect"].signature
    )
