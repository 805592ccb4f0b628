"""The demo never leaks into production: the production API refuses to start while the demo's
well-known accounts (or its password) are in its database, and refuses to create them."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from cloud import cli
from cloud.api import create_app
from cloud.auth.demo_accounts import DEMO_PASSWORD, DEMO_USERNAMES, DemoAccountError
from simulators import demo_banner
from tests.support.access import access_api
from tests.support.production import production_settings
from tests.support.releases import RecordingPublisher
from tests.support.testclient import TestClient

PRODUCTION_ENV = {
    "FACTORY_PROFILE": "production",
    "FACTORY_BROKER_URL": "mqtts://broker.plant:8883",
    "FACTORY_BROKER_USERNAME": "cloud",
    "FACTORY_BROKER_PASSWORD": "a-real-broker-password",
}


def _seed_like_the_demo(db_url: str) -> None:
    """The console users ``factory-sim demo`` makes, with its own names and password."""
    env = {"FACTORY_DB_URL": db_url, "FACTORY_NEW_PASSWORD": demo_banner.DEMO_PASSWORD}
    for user, role in demo_banner.DEMO_USERS.items():
        assert cli.main(["users", "create", user, "--role", role], environ=env) == 0


def test_the_cloud_knows_the_demos_accounts() -> None:
    assert tuple(sorted(demo_banner.DEMO_USERS)) == tuple(sorted(DEMO_USERNAMES))
    assert demo_banner.DEMO_PASSWORD == DEMO_PASSWORD


def test_production_refuses_to_start_on_a_database_with_the_demo_accounts(
    db_url: str, tmp_path: Path
) -> None:
    _seed_like_the_demo(db_url)
    env = {"FACTORY_DB_URL": db_url, "FACTORY_NEW_PASSWORD": DEMO_PASSWORD}
    assert cli.main(["users", "create", "ana", "--role", "viewer"], environ=env) == 0  # demo profile: allowed
    app = create_app(production_settings(db_url, tmp_path), RecordingPublisher())
    with pytest.raises(DemoAccountError) as refused, TestClient(app):
        pass
    message = str(refused.value)
    for name in ("admin", "operator", "viewer"):
        assert f"{name} (demo account name)" in message
    assert "ana (demo password)" in message
    assert "factory-cloud users disable NAME" in message


def test_factory_cloud_api_in_production_stops_naming_the_demo_account(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    _seed_like_the_demo(db_url)
    # A port already taken: should the check not stop start-up, binding fails instead of serving.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        with pytest.raises(SystemExit) as stopped:
            cli.main(["api", "--port", port], environ={**PRODUCTION_ENV, "FACTORY_DB_URL": db_url})
    assert stopped.value.code != 0
    assert "demo's well-known accounts: admin (demo account name)" in caplog.text


def test_production_starts_once_the_demo_accounts_are_disabled(db_url: str, tmp_path: Path) -> None:
    _seed_like_the_demo(db_url)
    for name in DEMO_USERNAMES:
        assert cli.main(["users", "disable", name], environ={"FACTORY_DB_URL": db_url}) == 0
    with TestClient(create_app(production_settings(db_url, tmp_path), RecordingPublisher())) as client:
        assert client.get("/healthz").status_code == 200


def test_production_refuses_to_create_demo_accounts(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {**PRODUCTION_ENV, "FACTORY_DB_URL": db_url, "FACTORY_NEW_PASSWORD": "a-good-long-password"}
    assert cli.main(["users", "create", "admin", "--role", "admin"], environ=env) == 1
    assert "'admin' is one of the demo's well-known accounts" in capsys.readouterr().err
    env["FACTORY_NEW_PASSWORD"] = DEMO_PASSWORD
    assert cli.main(["users", "create", "ana", "--role", "admin"], environ=env) == 1
    assert "the demo's published password" in capsys.readouterr().err
    with access_api(db_url, tmp_path, profile="production", **_production_broker()) as access:
        body = {"username": "viewer", "password": "a-good-long-password", "role": "viewer"}
        refused = access.client.post("/api/v1/users", json=body, headers=access.admin)
        assert refused.status_code == 422
        assert "demo's well-known accounts" in refused.json()["detail"]


def _production_broker() -> dict[str, str]:
    return {
        "broker_url": PRODUCTION_ENV["FACTORY_BROKER_URL"],
        "broker_username": PRODUCTION_ENV["FACTORY_BROKER_USERNAME"],
        "broker_password": PRODUCTION_ENV["FACTORY_BROKER_PASSWORD"],
    }
