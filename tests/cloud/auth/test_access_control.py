"""Access control: 401 without a valid token, 403 with too little role, hashed secrets, audit log."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from cloud import cli
from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.db.models import ApiToken, User
from tests.support.production import assert_role_gates, production_api
from tests.support.releases import RecordingPublisher
from tests.support.testclient import TestClient
from tests.support.tokens import bearer, mint_tokens

SHA = "ab" * 32
# Every write endpoint and the least role that may call it.
WRITES = [
    ("PUT", f"/api/v1/blobs/{SHA}?size=1", "admin"),
    ("POST", "/api/v1/models/versions", "admin"),
    ("POST", "/api/v1/rollouts", "admin"),
    ("POST", "/api/v1/rollouts/r1/pause", "operator"),
    ("POST", "/api/v1/rollouts/r1/resume", "operator"),
    ("POST", "/api/v1/rollouts/r1/abort", "operator"),
    ("PATCH", "/api/v1/gateways/gw-1", "admin"),
    ("POST", "/api/v1/users", "admin"),
    ("POST", "/api/v1/tokens", "admin"),
    ("DELETE", "/api/v1/tokens/999", "admin"),
    ("GET", "/api/v1/audit", "admin"),
    ("GET", "/api/v1/users", "admin"),
    ("GET", "/api/v1/tokens", "admin"),
]


@pytest.fixture
def app_and_tokens(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    tokens = mint_tokens(db_url)
    settings = CloudSettings(db_url=db_url, artifact_dir=str(tmp_path / "artifacts"))
    with TestClient(create_app(settings, RecordingPublisher())) as client:
        yield client, tokens


def test_every_write_needs_a_valid_token_and_enough_role(
    app_and_tokens: tuple[TestClient, dict[str, str]],
) -> None:
    assert_role_gates(*app_and_tokens, WRITES)


def test_operator_pauses_but_cannot_start_a_rollout(
    app_and_tokens: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = app_and_tokens
    body = {"model_name": "m", "version": "1", "target": {"gateways": ["gw-1"]}}
    assert client.post("/api/v1/rollouts", json=body, headers=bearer(tokens["operator"])).status_code == 403
    # Past the role check, the operator's pause reaches the handler (404: no such rollout).
    assert (
        client.post("/api/v1/rollouts/none/pause", json={}, headers=bearer(tokens["operator"])).status_code
        == 404
    )


def test_production_reads_need_a_viewer_token(db_url: str, tmp_path: Path) -> None:
    with production_api(db_url, tmp_path) as (client, tokens):
        for path in (
            "/api/v1/gateways",
            "/api/v1/results",
            "/api/v1/lines",
            "/api/v1/dead-letters",
            "/api/v1/models",
            "/api/v1/rollouts",
        ):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers=bearer(tokens["viewer"])).status_code == 200, path


def test_demo_reads_are_open_but_writes_are_not(app_and_tokens: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = app_and_tokens
    assert client.get("/api/v1/gateways").status_code == 200
    assert client.get("/api/v1/models").status_code == 200
    assert client.post("/api/v1/tokens", json={"name": "x", "role": "admin"}).status_code == 401


def test_writes_are_audited_with_who_what_when(app_and_tokens: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = app_and_tokens
    admin = bearer(tokens["admin"])
    assert (
        client.post(
            "/api/v1/users",
            json={"username": "ana", "password": "correct horse", "role": "operator"},
            headers=admin,
        ).status_code
        == 201
    )
    made = client.post(
        "/api/v1/tokens", json={"name": "line-3 console", "role": "viewer"}, headers=admin
    ).json()
    assert client.delete(f"/api/v1/tokens/{made['id']}", headers=admin).status_code == 204
    entries = client.get("/api/v1/audit", headers=admin).json()
    assert [(e["actor"], e["action"], e["target"]) for e in entries] == [
        ("token:test-admin", "token.revoke", "line-3 console"),
        ("token:test-admin", "token.create", "line-3 console"),
        ("token:test-admin", "user.create", "ana"),
    ]
    assert all(e["at"] for e in entries)
    assert "correct horse" not in str(entries)
    assert made["token"] not in str(entries)
    # The revoked token no longer opens anything.
    assert client.get("/api/v1/models", headers=bearer(made["token"])).status_code == 401


def test_tokens_and_passwords_are_stored_only_as_hashes(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"FACTORY_DB_URL": db_url, "FACTORY_NEW_PASSWORD": "s3cret-enough"}
    assert cli.main(["users", "create", "olga", "--role", "admin"], environ=env) == 0
    assert cli.main(["tokens", "create", "--role", "operator", "--name", "ci"], environ=env) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert secret.startswith("fe_")
    assert len(secret) > 40
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            user = conn.execute(sa.select(User)).one()
            token = conn.execute(sa.select(ApiToken)).one()
            dump = " ".join(
                str(v)
                for t in ("users", "api_tokens", "audit_log")
                for row in conn.execute(sa.text(f"SELECT * FROM {t}"))
                for v in row
            )
    finally:
        engine.dispose()
    assert user.password_hash.startswith("$argon2id$")
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.role == "operator"
    assert secret not in dump
    assert "s3cret-enough" not in dump
    # A duplicate user is refused with a reason and a non-zero exit.
    assert cli.main(["users", "create", "olga", "--role", "viewer"], environ=env) == 1
    assert "already exists" in capsys.readouterr().err


def test_a_user_logs_in_with_a_password_and_gets_a_token_of_their_role(
    app_and_tokens: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = app_and_tokens
    admin = bearer(tokens["admin"])
    body = {"username": "ana", "password": "correct horse", "role": "operator"}
    assert client.post("/api/v1/users", json=body, headers=admin).status_code == 201
    wrong = client.post("/api/v1/auth/login", json={"username": "ana", "password": "wrong horse"})
    assert wrong.status_code == 401
    unknown = client.post("/api/v1/auth/login", json={"username": "bob", "password": "correct horse"})
    assert unknown.status_code == 401
    login = client.post("/api/v1/auth/login", json={"username": "ana", "password": "correct horse"})
    assert login.status_code == 200
    token = bearer(login.json()["token"])
    assert login.json()["role"] == "operator"
    # Operator rights: may pause (404, no such rollout), may not start a rollout.
    assert client.post("/api/v1/rollouts/none/pause", json={}, headers=token).status_code == 404
    assert (
        client.post("/api/v1/tokens", json={"name": "x", "role": "viewer"}, headers=token).status_code == 403
    )
    actions = [(e["actor"], e["action"]) for e in client.get("/api/v1/audit", headers=admin).json()]
    assert ("user:ana", "user.login") in actions
