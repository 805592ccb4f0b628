"""The cloud's side of signed desired states: every staged statement is signed with the key that
`factory-cloud desired-key` names, expires after desired_ttl_h, and is re-signed halfway there."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import update

from cloud.cli import main as factory_cloud
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.db.models import GatewayDesired
from cloud.ota.desired import refresh_expiring, stage_desired
from protocol.desired_signing import admit
from protocol.messages import utcnow
from protocol.ota import DesiredState, ModelOffer
from protocol.signing import TrustStore, load_public_key
from tests.support.releases import make_release

TTL_H = 10.0


@pytest.fixture
def signing(cloud_settings: CloudSettings, tmp_path: Path) -> CloudSettings:
    settings = cloud_settings.model_copy(
        update={"artifact_dir": str(tmp_path / "var" / "artifacts"), "desired_ttl_h": TTL_H}
    )
    migrate(settings.db_url)
    return settings


def _offer(tmp_path: Path) -> ModelOffer:
    release = make_release(tmp_path / "release", "1.1", Ed25519PrivateKey.generate())
    return ModelOffer(manifest=release.manifest, signature=release.signature, artifact_url="http://cloud/a")


def _trust(settings: CloudSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> TrustStore:
    """The public key as an admin gets it for the gateways: `factory-cloud desired-key`."""
    public = tmp_path / "cloud-desired.pub.pem"
    argv = [
        "desired-key",
        "--db",
        settings.db_url,
        "--artifact-dir",
        settings.artifact_dir,
        "--public-out",
        str(public),
    ]
    assert factory_cloud(argv, environ={}) == 0
    assert str(public) in capsys.readouterr().out
    return TrustStore([load_public_key(public)])


def test_staged_statements_are_signed_with_the_printed_key_and_expire(
    signing: CloudSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(signing.db_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            [state] = stage_desired(session, signing, {"gw-1": _offer(tmp_path)}, "main", None)
        with make_sessionmaker(engine)() as session:
            row = session.get(GatewayDesired, "gw-1")
            assert row is not None
            stored = DesiredState.model_validate(row.document)
    finally:
        engine.dispose()
    assert stored == state, "the row holds the signed statement that was published"
    assert (signing_path := Path(signing.artifact_dir).parent / "desired-signing.pem").exists()
    assert oct(signing_path.stat().st_mode & 0o777) == "0o600"
    assert state.expires_at == state.issued_at + timedelta(hours=TTL_H)
    assert admit(state, _trust(signing, tmp_path, capsys), None, utcnow()) is None


def test_a_statement_past_half_its_life_is_re_signed_at_the_next_revision(
    signing: CloudSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(signing.db_url)
    sessions = make_sessionmaker(engine)
    try:
        with sessions.begin() as session:
            [first] = stage_desired(session, signing, {"gw-1": _offer(tmp_path)}, "main", "r-1")
            assert refresh_expiring(session, signing) == [], "a fresh statement is left alone"
        with sessions.begin() as session:
            aged = utcnow() - timedelta(hours=TTL_H * 0.6)
            session.execute(update(GatewayDesired).values(updated_at=aged))
        with sessions.begin() as session:
            [refreshed] = refresh_expiring(session, signing)
    finally:
        engine.dispose()
    assert refreshed.revision == first.revision + 1
    assert (refreshed.slots, refreshed.rollout_id) == (first.slots, "r-1")
    assert refreshed.expires_at is not None
    assert first.expires_at is not None
    assert refreshed.expires_at > first.expires_at
    assert admit(refreshed, _trust(signing, tmp_path, capsys), None, utcnow()) is None
