"""A token's life: it expires, logout ends it, disabling its user ends it at once, and the audit
log names the user behind it whatever the token was called."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud import cli
from cloud.auth import service
from cloud.db.models import ApiToken
from protocol.messages import utcnow
from tests.support.access import PASSWORD, Access
from tests.support.console import ORIGIN
from tests.support.tokens import bearer


def _later(monkeypatch: pytest.MonkeyPatch, by: timedelta) -> None:
    """Move the clock tokens are checked against ``by`` into the future."""
    now = utcnow()
    monkeypatch.setattr(service, "utcnow", lambda: now + by)


def test_an_api_token_lives_as_long_as_it_was_told(access: Access, monkeypatch: pytest.MonkeyPatch) -> None:
    made = access.client.post(
        "/api/v1/tokens", json={"name": "script", "role": "viewer", "expires": "30m"}, headers=access.admin
    ).json()
    assert made["expires_at"] > (utcnow() + timedelta(minutes=29)).isoformat()
    assert made["expires_at"] < (utcnow() + timedelta(minutes=31)).isoformat()
    assert access.client.get("/api/v1/models", headers=bearer(made["token"])).status_code == 200
    _later(monkeypatch, timedelta(minutes=31))
    expired = access.client.get("/api/v1/models", headers=bearer(made["token"]))
    assert expired.status_code == 401
    assert "expired at" in expired.json()["detail"]


def test_a_login_lasts_one_session_of_twelve_hours(access: Access, monkeypatch: pytest.MonkeyPatch) -> None:
    access.add_user("ana")
    token = access.token_of("ana")
    _later(monkeypatch, timedelta(hours=11, minutes=59))
    assert access.client.get("/api/v1/models", headers=bearer(token)).status_code == 200
    _later(monkeypatch, timedelta(hours=12, minutes=1))
    assert access.client.get("/api/v1/models", headers=bearer(token)).status_code == 401
    # The console's cookie lasts as long as the token in it.
    form = {"username": "ana", "password": PASSWORD}
    monkeypatch.undo()
    answer = access.client.post("/login", data=form, headers=ORIGIN, follow_redirects=False)
    max_age = int(answer.headers["set-cookie"].lower().split("max-age=")[1].split(";")[0])
    assert 12 * 3600 - 60 <= max_age <= 12 * 3600


def test_token_lifetimes_are_checked(access: Access) -> None:
    for expires, reason in (
        ("forever", "not a number and a unit"),
        ("0d", "longer than zero"),
        ("400d", "366d"),
    ):
        answer = access.client.post(
            "/api/v1/tokens", json={"name": "x", "role": "viewer", "expires": expires}, headers=access.admin
        )
        assert answer.status_code == 422, expires
        assert reason in answer.json()["detail"], expires


def test_logout_revokes_the_token_it_carries(access: Access) -> None:
    access.add_user("ana")
    token = access.token_of("ana")
    assert access.client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    reused = access.client.get("/api/v1/models", headers=bearer(token))
    assert reused.status_code == 401
    assert "revoked" in reused.json()["detail"]
    assert [e["target"] for e in access.audit("user.logout")] == ["ana"]


def test_disabling_a_user_stops_their_tokens_at_once(access: Access, db_url: str) -> None:
    ana = access.add_user("ana")
    token = access.token_of("ana")
    other = access.token_of("ana")
    assert access.client.get("/api/v1/models", headers=bearer(token)).status_code == 200
    answer = access.client.patch("/api/v1/users/ana", json={"disabled": True}, headers=access.admin)
    assert answer.status_code == 200
    assert answer.json()["disabled"] is True
    assert access.client.get("/api/v1/models", headers=bearer(token)).status_code == 401
    assert access.login("ana").status_code == 401
    assert access.audit("user.disable")[0]["details"] == {"tokens_revoked": 2}
    # Enabled again, the user logs in afresh; the old tokens stay dead.
    access.client.patch("/api/v1/users/ana", json={"disabled": False}, headers=access.admin)
    assert access.client.get("/api/v1/models", headers=bearer(other)).status_code == 401
    fresh = access.token_of("ana")
    # A user disabled straight in the database (no revocation) is refused all the same.
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET disabled = true WHERE id = :id"), {"id": ana})
    engine.dispose()
    refused = access.client.get("/api/v1/models", headers=bearer(fresh))
    assert refused.status_code == 401
    assert "who is disabled" in refused.json()["detail"]
    assert (
        access.client.patch("/api/v1/users/nobody", json={"disabled": True}, headers=access.admin).status_code
        == 404
    )


def test_the_audit_log_names_the_user_behind_a_token_not_its_chosen_name(access: Access) -> None:
    ana = access.add_user("ana", role="admin")
    token = access.token_of("ana", token_name="login:admin")
    made = access.client.post("/api/v1/tokens", json={"name": "ci", "role": "viewer"}, headers=bearer(token))
    assert made.status_code == 201
    entry = access.audit("token.create")[0]
    assert (entry["actor"], entry["user_id"]) == ("user:ana", ana)
    login = access.audit("user.login")[0]
    assert (login["actor"], login["user_id"]) == ("user:ana", ana)
    # A token of no user keeps its own name, marked as a token's.
    assert access.audit("user.create")[0]["actor"] == "token:test-admin"
    # The console shows the user, whatever the login's token is called.
    access.client.cookies.set("fe_console", token)
    page = access.client.get("/gateways")
    assert '<span id="who">ana · admin</span>' in page.text


def test_factory_cloud_tokens_create_takes_a_lifetime(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"FACTORY_DB_URL": db_url}
    assert cli.main(["tokens", "create", "--role", "viewer", "--expires", "30d"], environ=env) == 0
    out, err = capsys.readouterr()
    secret = out.strip().splitlines()[-1]
    assert "expires " in err
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        expires_at = conn.execute(sa.select(ApiToken.expires_at)).scalar_one()
    engine.dispose()
    assert abs(expires_at - (utcnow() + timedelta(days=30))) < timedelta(minutes=1)
    assert secret.startswith("fe_")
    assert cli.main(["tokens", "create", "--role", "viewer", "--expires", "1y"], environ=env) == 1
    assert "--expires: token lifetime '1y' is not a number and a unit" in capsys.readouterr().err


def test_factory_cloud_users_disable_revokes_the_users_tokens(
    access: Access, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    access.add_user("ana")
    token = access.token_of("ana")
    assert cli.main(["users", "disable", "ana"], environ={"FACTORY_DB_URL": db_url}) == 0
    assert "user ana disabled; 1 token(s) revoked" in capsys.readouterr().out
    assert access.client.get("/api/v1/models", headers=bearer(token)).status_code == 401
    assert cli.main(["users", "disable", "nobody"], environ={"FACTORY_DB_URL": db_url}) == 1
    assert "no user 'nobody'" in capsys.readouterr().err
