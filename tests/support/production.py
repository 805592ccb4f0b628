"""The API in the production profile (every read needs a token), and the role gates of endpoints."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cloud.api import create_app
from cloud.config import CloudSettings
from tests.support.releases import RecordingPublisher
from tests.support.testclient import TestClient
from tests.support.tokens import bearer, mint_tokens

# The roles below each role, which its endpoints refuse (403).
LOWER_ROLES = {"viewer": (), "operator": ("viewer",), "admin": ("viewer", "operator")}


def production_settings(db_url: str, folder: Path) -> CloudSettings:
    """Production-profile settings on ``db_url``, artifacts under ``folder``."""
    return CloudSettings(
        profile="production",
        db_url=db_url,
        broker_url="mqtts://broker.plant:8883",
        broker_username="cloud",
        broker_password="a-real-broker-password",  # type: ignore[arg-type]
        artifact_dir=str(folder / "artifacts"),
    )


@contextmanager
def production_api(db_url: str, folder: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The production-profile API on ``db_url`` and a token per role (viewer, operator, admin)."""
    tokens = mint_tokens(db_url)
    with TestClient(create_app(production_settings(db_url, folder), RecordingPublisher())) as client:
        yield client, tokens


def assert_role_gates(
    client: TestClient,
    tokens: dict[str, str],
    endpoints: Iterable[tuple[str, str, str]],
    body: Callable[[str, str], Any] = lambda method, path: {},
) -> None:
    """Each endpoint (method, path, least role) answers 401 without a token and with a forged one,
    403 naming the role to every lower role, and lets the role itself past the gate. ``body`` gives
    the JSON each request sends."""
    for method, path, role in endpoints:
        json = body(method, path)
        anonymous = client.request(method, path, json=json)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.headers["www-authenticate"] == "Bearer"
        forged = client.request(method, path, json=json, headers=bearer("fe_not-a-real-token"))
        assert forged.status_code == 401, (method, path)
        for weaker in LOWER_ROLES[role]:
            denied = client.request(method, path, json=json, headers=bearer(tokens[weaker]))
            assert denied.status_code == 403, (method, path, weaker, denied.text)
            assert f"needs the {role} role" in denied.json()["detail"]
        allowed = client.request(method, path, json=json, headers=bearer(tokens[role]))
        assert allowed.status_code not in (401, 403), (method, path, role, allowed.text)
