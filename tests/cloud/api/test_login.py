"""Logging in under attack: failures per account and per address lead to 429 with Retry-After,
each failure is audited, a locked-out guess costs no Argon2 work, and the body is capped."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher

from cloud.api.routers.login import LOGIN_MAX_BYTES
from cloud.auth import service
from cloud.auth.throttle import ADDRESS_POLICY
from tests.support.access import PASSWORD, WRONG, Access
from tests.support.console import ORIGIN
from tests.support.testclient import TestClient


class CountingHasher(PasswordHasher):
    """The service's Argon2 hasher, counting every hash and verification it runs."""

    runs = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.runs += 1
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002 - the base's name
        self.runs += 1
        return super().verify(hash, password)


def test_six_wrong_passwords_get_429_with_retry_after_and_every_failure_is_audited(access: Access) -> None:
    access.add_user("ana")
    assert [access.login("ana", WRONG).status_code for _ in range(5)] == [401] * 5
    sixth = access.login("ana", WRONG)
    assert sixth.status_code == 429
    assert sixth.headers["retry-after"] == "30"
    assert "too many failed logins for account 'ana'" in sixth.json()["detail"]
    # Locked means locked: the right password waits too.
    assert access.login("ana", PASSWORD).status_code == 429
    failures = access.audit("user.login_failed")
    assert len(failures) == 5
    assert {(f["actor"], f["target"], f["details"]["address"]) for f in failures} == {
        ("anonymous@testclient", "ana", "testclient")
    }
    assert failures[0]["details"]["locked_for_s"] == 30
    assert all(WRONG not in str(f) for f in failures)


def test_a_locked_out_attempt_costs_no_argon2_work(access: Access, monkeypatch: pytest.MonkeyPatch) -> None:
    access.add_user("ana")
    hasher = CountingHasher()
    monkeypatch.setattr(service, "_hasher", hasher)
    assert access.login("ana", WRONG).status_code == 401
    assert hasher.runs == 1  # a checked password costs one Argon2 verification
    for _ in range(4):
        access.login("ana", WRONG)
    before = hasher.runs
    refused = [access.login("ana", f"guess-{n}").status_code for n in range(50)]
    assert refused == [429] * 50
    assert hasher.runs == before


def test_the_back_off_doubles_and_the_right_password_gets_in_after_it(access: Access) -> None:
    access.add_user("ana")
    for _ in range(5):
        access.login("ana", WRONG)
    access.clock.advance(30)
    assert access.login("ana", WRONG).status_code == 401
    assert access.login("ana", WRONG).headers["retry-after"] == "60"
    access.clock.advance(60)
    assert access.login("ana", PASSWORD).status_code == 200
    assert access.login("ana", WRONG).status_code == 401  # the count started again


def test_spraying_many_accounts_from_one_address_is_throttled(access: Access) -> None:
    for n in range(ADDRESS_POLICY.free_failures):
        assert access.login(f"user-{n}", WRONG).status_code == 401
    refused = access.login("someone-new", WRONG)
    assert refused.status_code == 429
    assert "address testclient" in refused.json()["detail"]
    # Another address is not held up by this one's failures.
    access.add_user("ana")
    elsewhere = TestClient(access.client.app, client=("10.1.2.3", 40000))
    answer = elsewhere.post("/api/v1/auth/login", json={"username": "ana", "password": PASSWORD})
    assert answer.status_code == 200, answer.text


def test_an_oversized_login_body_is_refused_unread(access: Access) -> None:
    body = b'{"username": "ana", "password": "' + b"x" * LOGIN_MAX_BYTES + b'"}'
    answer = access.client.post(
        "/api/v1/auth/login", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert f"limit of {LOGIN_MAX_BYTES} bytes" in answer.json()["detail"]


def test_a_refused_login_body_never_echoes_the_password(access: Access) -> None:
    body = {"user": "ana", "password": "hunter2-is-my-password"}  # a misspelt field: the whole body is wrong
    answer = access.client.post("/api/v1/auth/login", json=body)
    assert answer.status_code == 422
    assert ["username"] in [error["loc"] for error in answer.json()["detail"]]
    assert "hunter2-is-my-password" not in answer.text


def test_the_console_login_is_throttled_by_the_browsers_address(access: Access) -> None:
    access.add_user("ana")
    browser = TestClient(access.client.app, client=("10.9.8.7", 50000))

    def post(password: str) -> Any:
        form = {"username": "ana", "password": password}
        return browser.post("/login", data=form, headers=ORIGIN, follow_redirects=False)

    assert [post(WRONG).status_code for _ in range(5)] == [401] * 5
    locked = post(PASSWORD)
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "30"
    assert "too many failed logins" in locked.text
    assert {f["details"]["address"] for f in access.audit("user.login_failed")} == {"10.9.8.7"}
