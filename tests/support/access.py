"""The API for access-control tests: a token per role, users made through the API, logins, the
audit log, and the login throttle on a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cloud.api import create_app
from cloud.auth.throttle import LoginThrottle
from cloud.config import CloudSettings
from tests.support.clock import ManualClock
from tests.support.releases import RecordingPublisher
from tests.support.testclient import TestClient
from tests.support.tokens import bearer, mint_tokens

PASSWORD = "right-horse-battery"  # noqa: S105 - test users only
WRONG = "wrong-horse-battery"  # noqa: S105 - test users only


@dataclass
class Access:
    """The running API (demo profile unless told), its admin's header and the throttle's clock."""

    client: TestClient
    tokens: dict[str, str]
    clock: ManualClock

    @property
    def admin(self) -> dict[str, str]:
        return bearer(self.tokens["admin"])

    def add_user(self, username: str, role: str = "operator", password: str = PASSWORD) -> int:
        """Create a user through the API; returns its id."""
        made = self.client.post(
            "/api/v1/users",
            json={"username": username, "password": password, "role": role},
            headers=self.admin,
        )
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    def login(self, username: str, password: str = PASSWORD, **extra: Any) -> httpx.Response:
        return self.client.post(
            "/api/v1/auth/login", json={"username": username, "password": password, **extra}
        )

    def token_of(self, username: str, password: str = PASSWORD, **extra: Any) -> str:
        """A login's token (asserting the login worked)."""
        answer = self.login(username, password, **extra)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])

    def audit(self, action: str) -> list[dict[str, Any]]:
        """The audit entries of ``action``, newest first."""
        answer = self.client.get("/api/v1/audit", params={"action": action}, headers=self.admin)
        assert answer.status_code == 200, answer.text
        return list(answer.json())


@contextmanager
def access_api(db_url: str, folder: Path, **settings: Any) -> Iterator[Access]:
    """The API on ``db_url`` with a token per role and a login throttle on a :class:`ManualClock`."""
    tokens = mint_tokens(db_url)
    config = CloudSettings(db_url=db_url, artifact_dir=str(folder / "artifacts"), **settings)
    clock = ManualClock()
    with TestClient(create_app(config, RecordingPublisher())) as client:
        client.app.state.login_throttle = LoginThrottle(clock)  # type: ignore[attr-defined]
        yield Access(client, tokens, clock)
