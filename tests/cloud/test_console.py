"""The operators' console over the real API: login, every page, role-gated actions, CSRF, live stream."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.console.line_view import box_style as _box_style
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.service import ingest_messages
from protocol.topics import Channel, TopicSpace
from tests.cloud.console_helpers import PASSWORD, Seeded, seed_console
from tests.cloud.helpers import gateway_event, inbound
from tests.cloud.ota_helpers import RecordingPublisher
from tests.cloud.testclient import TestClient

ORIGIN = {"Origin": "http://testserver"}
PAGES = ["/", "/lines/line-1", "/gateways", "/gateways/gw-a", "/models", "/rollouts", "/alerts"]


@pytest.fixture
def console(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[tuple[TestClient, Seeded]]:
    settings = CloudSettings(db_url=db_url, artifact_dir=str(tmp_path / "artifacts"))
    seeded = seed_console(settings, topic_space, Ed25519PrivateKey.generate(), tmp_path / "release")
    with TestClient(create_app(settings, RecordingPublisher())) as client:
        yield client, seeded


def login(client: TestClient, user: str) -> None:
    client.cookies.clear()
    answer = client.post(
        "/login",
        data={"username": user, "password": PASSWORD, "next": "/"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def create_rollout(client: TestClient) -> str:
    form = {"model_name": "defect-cnn", "version": "1.0", "gateways": "gw-a", "waves": "100%", "bake_s": "0"}
    answer = client.post("/rollouts", data=form, headers=ORIGIN, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    rollouts = client.get(
        "/api/v1/rollouts", headers={"Authorization": f"Bearer {client.cookies['fe_console']}"}
    )
    return str(rollouts.json()[0]["id"])


def test_pages_send_a_visitor_without_login_to_the_login_form(console: tuple[TestClient, Seeded]) -> None:
    client, _ = console
    for path in PAGES:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next="), path
    assert client.get("/console/events?limit=1").status_code == 401
    assert client.get("/login").status_code == 200


def test_login_keeps_the_token_in_an_httponly_samesite_strict_cookie(
    console: tuple[TestClient, Seeded],
) -> None:
    client, _ = console
    answer = client.post(
        "/login", data={"username": "vera", "password": PASSWORD, "next": "/gateways"}, headers=ORIGIN,
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303
    assert answer.headers["location"] == "/gateways"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


def test_wrong_password_is_refused_and_no_cookie_is_set(console: tuple[TestClient, Seeded]) -> None:
    client, _ = console
    answer = client.post("/login", data={"username": "vera", "password": "nope-nope"}, headers=ORIGIN)
    assert answer.status_code == 401
    assert "wrong username or password" in answer.text
    assert "set-cookie" not in answer.headers


def test_login_never_redirects_off_site(console: tuple[TestClient, Seeded]) -> None:
    client, _ = console
    form = {"username": "vera", "password": PASSWORD, "next": "//evil.example/x"}
    answer = client.post("/login", data=form, headers=ORIGIN, follow_redirects=False)
    assert answer.headers["location"] == "/"


def test_every_page_renders_the_seeded_data_for_a_viewer(console: tuple[TestClient, Seeded]) -> None:
    client, seeded = console
    login(client, "vera")
    pages = {path: client.get(path) for path in PAGES}
    for path, answer in pages.items():
        assert answer.status_code == 200, (path, answer.text[:500])
    overview = pages["/"].text
    assert 'data-line="line-1"' in overview
    assert 'data-line="line-2"' in overview
    assert "defect-cnn 1.0" in overview  # model in use, from gw-a's birth
    line = pages["/lines/line-1"].text
    assert "<svg" in line
    assert "<td>scratch</td><td>2</td>" in line
    assert "<td>dent</td><td>1</td>" in line
    assert f"/console/thumbnails/{seeded.thumbnail_result}" in line
    assert "gw-a" in pages["/gateways"].text
    assert "offline" in pages["/gateways"].text  # gw-b's death
    assert "Held-out accuracy <strong>0.97</strong>" in pages["/models"].text
    for path in (
        "/lines/line-1?range=24h",
        "/lines/line-1?range=7d",
        "/alerts?show=all",
        "/models/defect-cnn/1.0",
    ):
        assert client.get(path).status_code == 200, path


def test_model_card_html_is_shown_as_text_not_run(console: tuple[TestClient, Seeded]) -> None:
    client, _ = console
    login(client, "vera")
    page = client.get("/models").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page


def test_thumbnail_is_served_through_the_console_with_the_cookie(console: tuple[TestClient, Seeded]) -> None:
    client, seeded = console
    assert client.get(f"/console/thumbnails/{seeded.thumbnail_result}").status_code == 401
    login(client, "vera")
    answer = client.get(f"/console/thumbnails/{seeded.thumbnail_result}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/jpeg"
    assert answer.content[:2] == b"\xff\xd8"


def test_events_stream_pushes_a_summary_per_line(console: tuple[TestClient, Seeded]) -> None:
    client, _ = console
    login(client, "vera")
    answer = client.get("/console/events?limit=2")
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = [chunk for chunk in answer.text.split("\n\n") if chunk]
    assert len(events) == 2
    kind, data = events[0].split("\n")
    assert kind == "event: summary"
    summary = json.loads(data.removeprefix("data: "))
    tiles = {t["line"]: t for t in summary["lines"]}
    assert set(tiles) == {"line-1", "line-2"}
    assert tiles["line-1"]["results_hour"] == 6
    assert tiles["line-1"]["defect_rate"] == pytest.approx(0.5)
    assert tiles["line-1"]["gateways_online"] == 1
    assert tiles["line-2"]["gateways_offline"] == 1
    assert summary["alerts_available"] is True


def test_viewer_is_offered_no_write_and_the_api_refuses_it(console: tuple[TestClient, Seeded]) -> None:
    client, _ = console
    login(client, "ada")
    rollout = create_rollout(client)
    login(client, "vera")
    assert 'id="create-rollout"' not in client.get("/rollouts").text
    page = client.get(f"/rollouts/{rollout}").text
    assert 'id="pause"' not in page
    assert 'id="abort"' not in page
    form = {"model_name": "defect-cnn", "version": "1.0", "gateways": "gw-a"}
    refused = client.post("/rollouts", data=form, headers=ORIGIN)
    assert refused.status_code == 403
    assert "needs the admin role" in refused.text
    assert client.post(f"/rollouts/{rollout}/pause", headers=ORIGIN).status_code == 403


def test_operator_pauses_a_rollout_but_is_not_offered_creating_one(
    console: tuple[TestClient, Seeded],
) -> None:
    client, _ = console
    login(client, "ada")
    assert 'id="create-rollout"' in client.get("/rollouts").text
    rollout = create_rollout(client)
    login(client, "otto")
    assert 'id="create-rollout"' not in client.get("/rollouts").text
    page = client.get(f"/rollouts/{rollout}").text
    assert 'id="pause"' in page
    answer = client.post(f"/rollouts/{rollout}/pause", data={"reason": "shift check"}, headers=ORIGIN)
    assert answer.status_code == 200
    assert 'id="state">paused<' in answer.text
    assert 'id="resume"' in answer.text
    form = {"model_name": "defect-cnn", "version": "1.0", "gateways": "gw-a"}
    assert client.post("/rollouts", data=form, headers=ORIGIN).status_code == 403


def test_forms_from_another_origin_are_refused(console: tuple[TestClient, Seeded]) -> None:
    client, _ = console
    login(client, "ada")
    rollout = create_rollout(client)
    for headers in ({"Origin": "http://evil.example"}, {}):
        answer = client.post(f"/rollouts/{rollout}/abort", headers=headers)
        assert answer.status_code == 403, headers
        assert "console form refused" in answer.text
    assert 'id="state">running<' in client.get(f"/rollouts/{rollout}").text


def test_acknowledging_an_unknown_alert_shows_the_api_answer(console: tuple[TestClient, Seeded]) -> None:
    client, _ = console
    login(client, "vera")
    assert client.post("/alerts/999/ack", headers=ORIGIN).status_code == 403
    login(client, "otto")
    answer = client.post("/alerts/999/ack", headers=ORIGIN)
    assert answer.status_code == 404
    assert "The API answered 404" in answer.text


def test_logout_revokes_the_token(console: tuple[TestClient, Seeded]) -> None:
    client, _ = console
    login(client, "vera")
    token = client.cookies["fe_console"]
    answer = client.post("/logout", headers=ORIGIN, follow_redirects=False)
    assert answer.status_code == 303
    assert client.get("/api/v1/gateways", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 303


def test_static_assets_are_served_and_nothing_else(console: tuple[TestClient, Seeded]) -> None:
    client, _ = console
    assert client.get("/console/static/console.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/console/static/console.css").status_code == 200
    assert client.get("/console/static/..%2Frender.py").status_code == 404


def test_anomaly_box_is_placed_relative_to_its_crop() -> None:
    crop = {"x": 100, "y": 50, "w": 200, "h": 100, "frame_w": 640, "frame_h": 480, "tw": 160, "th": 80}
    assert (
        _box_style({"x": 150, "y": 75, "w": 100, "h": 50}, crop)
        == "left:25.0%;top:25.0%;width:50.0%;height:50.0%"
    )
    # A box reaching past the crop is clipped to the picture, and no crop means no box.
    assert (
        _box_style({"x": 250, "y": 50, "w": 400, "h": 10}, crop)
        == "left:75.0%;top:0.0%;width:25.0%;height:10.0%"
    )
    assert _box_style({"x": 1, "y": 1, "w": 1, "h": 1}, None) == ""


def test_events_stream_ends_with_gone_when_the_token_is_revoked(console: tuple[TestClient, Seeded]) -> None:
    client, _ = console
    login(client, "vera")
    with client.stream("GET", "/console/events?limit=50") as stream:
        lines = stream.iter_lines()
        assert next(lines) == "event: summary"
        client.post("/logout", headers=ORIGIN)
        seen = [line for line in lines if line.startswith("event:")]
    # Logout revoked the token the open stream was using: it says so and ends, long before 50 events.
    assert seen[-1] == "event: gone"
    assert len(seen) < 49


def test_admin_creates_edits_and_deletes_a_rule_and_api_errors_sit_beside_the_form(
    console: tuple[TestClient, Seeded],
) -> None:
    client, _ = console
    login(client, "ada")
    assert 'id="create-rule"' in client.get("/alerts").text
    bad = {"line": "line-1", "kind": "defect_rate", "threshold": "150", "window_s": "600", "enabled": "on"}
    refused = client.post("/alerts/rules", data=bad, headers=ORIGIN)
    assert refused.status_code == 422
    assert "a defect rate is a percent (0-100), got 150" in refused.text
    assert 'name="threshold" value="150"' in refused.text  # the typed values are kept
    assert 'name="window_s" placeholder="e.g. 600" value="600"' in refused.text
    good = {**bad, "threshold": "5"}
    created = client.post("/alerts/rules", data=good, headers=ORIGIN, follow_redirects=False)
    assert created.status_code == 303, created.text
    page = client.get("/alerts").text
    assert 'data-rule="1"><td>line-1</td><td>Defect rate</td><td>5%</td><td>600 s (10 min)</td>' in page
    no_window = client.post("/alerts/rules/1", data={"kind": "defect_rate", "threshold": "7"}, headers=ORIGIN)
    assert no_window.status_code == 422
    assert "Window: a defect_rate rule needs a window in seconds" in no_window.text
    edit = {"kind": "defect_rate", "threshold": "7", "window_s": "300"}  # no 'enabled': unchecked
    assert (
        client.post("/alerts/rules/1", data=edit, headers=ORIGIN, follow_redirects=False).status_code == 303
    )
    page = client.get("/alerts").text
    row = r'data-rule="1"><td>line-1</td><td>Defect rate</td><td>7%</td><td>300 s \(5 min\)</td>\s*<td><span class="badge bad">disabled'
    assert re.search(row, page), page[page.find("data-rule") :][:400]
    gone = client.post("/alerts/rules/1/delete", headers=ORIGIN, follow_redirects=False)
    assert gone.status_code == 303
    assert 'data-rule="1"' not in client.get("/alerts").text


def test_roles_below_admin_see_no_rule_form_and_are_refused_403(console: tuple[TestClient, Seeded]) -> None:
    client, _ = console
    form = {"line": "line-1", "kind": "outbox_backlog", "threshold": "10", "enabled": "on"}
    for user in ("vera", "otto"):
        login(client, user)
        page = client.get("/alerts").text
        assert 'id="create-rule"' not in page
        assert 'action="/alerts/rules/' not in page
        refused = client.post("/alerts/rules", data=form, headers=ORIGIN)
        assert refused.status_code == 403, user
        assert "needs the admin role" in refused.text
        for path in ("/alerts/rules/1", "/alerts/rules/1/delete"):  # edit and delete: the API decides
            assert client.post(path, data=form, headers=ORIGIN).status_code == 403, (user, path)
    login(client, "ada")
    forged = client.post("/alerts/rules", data=form, headers={"Origin": "http://evil.example"})
    assert forged.status_code == 403
    assert "console form refused" in forged.text
    assert 'id="rule-list"' not in client.get("/alerts").text  # nothing was stored


def test_gateway_page_lists_the_gateways_events(
    console: tuple[TestClient, Seeded], db_url: str, topic_space: TopicSpace
) -> None:
    client, _ = console
    login(client, "vera")
    assert "No events reported yet." in client.get("/gateways/gw-a").text
    shed = gateway_event(
        gateway_id="gw-a", timestamp=datetime.now(UTC), level="warning", kind="outbox_shed",
        message="outbox full: shed seq 1-40", details={"first_seq": 1, "last_seq": 40},
    )  # fmt: skip
    engine = make_engine(db_url)
    try:
        ingest_messages(
            make_sessionmaker(engine), [inbound(topic_space, "gw-a", Channel.EVENTS, shed)], topic_space
        )
    finally:
        engine.dispose()
    page = client.get("/gateways/gw-a").text
    row = re.search(r'<table id="events">.*?</table>', page, re.S)
    assert row is not None, page
    assert "outbox_shed" in row.group(0)
    assert "outbox full: shed seq 1-40" in row.group(0)
    assert '<span class="badge bad">warning</span>' in row.group(0)
    assert "No events reported yet." not in page
