"""Logging in and out of the console: login redirects, the token in an HttpOnly SameSite=Strict cookie,
the origin check of forms, and logout revoking the token."""

from __future__ import annotations

from tests.support.console import (
    ORIGIN,
    PAGES,
    PASSWORD,
    Console,
    create_rollout,
    login,
)


def test_pages_send_a_visitor_without_login_to_the_login_form(console: Console) -> None:
    client = console.client
    for path in PAGES:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next="), path
    assert client.get("/console/events?limit=1").status_code == 401
    assert client.get("/login").status_code == 200


def test_login_keeps_the_token_in_an_httponly_samesite_strict_cookie(
    console: Console,
) -> None:
    client = console.client
    answer = client.post(
        "/login", data={"username": "vera", "password": PASSWORD, "next": "/gateways"}, headers=ORIGIN,
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303
    assert answer.headers["location"] == "/gateways"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


def test_wrong_password_is_refused_and_no_cookie_is_set(console: Console) -> None:
    client = console.client
    answer = client.post("/login", data={"username": "vera", "password": "nope-nope"}, headers=ORIGIN)
    assert answer.status_code == 401
    assert "wrong username or password" in answer.text
    assert "set-cookie" not in answer.headers


def test_login_never_redirects_off_site(console: Console) -> None:
    client = console.client
    form = {"username": "vera", "password": PASSWORD, "next": "//evil.example/x"}
    answer = client.post("/login", data=form, headers=ORIGIN, follow_redirects=False)
    assert answer.headers["location"] == "/"


def test_forms_from_another_origin_are_refused(console: Console) -> None:
    client = console.client
    login(client, "ada")
    rollout = create_rollout(client)
    for headers in ({"Origin": "http://evil.example"}, {}):
        answer = client.post(f"/rollouts/{rollout}/abort", headers=headers)
        assert answer.status_code == 403, headers
        assert "console form refused" in answer.text
    assert 'id="state">running<' in client.get(f"/rollouts/{rollout}").text


def test_logout_revokes_the_token(console: Console) -> None:
    client = console.client
    login(client, "vera")
    token = client.cookies["fe_console"]
    answer = client.post("/logout", headers=ORIGIN, follow_redirects=False)
    assert answer.status_code == 303
    assert client.get("/api/v1/gateways", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 303
