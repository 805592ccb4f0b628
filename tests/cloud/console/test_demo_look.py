"""The Line page's "Demo: change look" (demo profile only): admins of a console given the demo's
control endpoint see it on the lines the demo simulates and switch the cameras' look; no one else
does, and without the setting it does not exist."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.api import create_app
from cloud.config import CloudSettings
from protocol.topics import TopicSpace
from tests.support.console import ORIGIN, Console, login, seed_console
from tests.support.demo_lines import DemoLines, running_demo_lines
from tests.support.releases import RecordingPublisher
from tests.support.testclient import TestClient


@dataclass(frozen=True)
class DemoConsole:
    """The console of a demo whose control endpoint simulates line-1's camera (gw-a)."""

    client: TestClient
    demo: DemoLines


@pytest.fixture
def demo_console(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[DemoConsole]:
    with running_demo_lines(tmp_path / "demo", {"gw-a": "line-1"}) as demo:
        settings = CloudSettings(
            db_url=db_url, artifact_dir=str(tmp_path / "artifacts"), demo_control_url=demo.url
        )
        seed_console(settings, topic_space, Ed25519PrivateKey.generate(), tmp_path / "release")
        with TestClient(create_app(settings, RecordingPublisher())) as client:
            yield DemoConsole(client, demo)


def _change(client: TestClient, line: str, look: str) -> Any:
    return client.post(
        f"/lines/{line}/demo-look", data={"look": look}, headers=ORIGIN, follow_redirects=False
    )


def test_admins_see_the_control_with_the_current_look(demo_console: DemoConsole) -> None:
    client = demo_console.client
    login(client, "ada")
    page = client.get("/lines/line-1").text
    assert 'id="demo-look"' in page
    assert "Demo: change look" in page
    assert re.search(r'<strong id="demo-look-now">normal</strong>', page)
    assert re.findall(
        r'<option value="(\w+)"', page.split('id="demo-look-choice"')[1].split("</select>")[0]
    ) == [
        "normal",
        "unseen",
        "dim",
        "warm",
        "mesh",
    ]
    assert 'action="/lines/line-1/demo-look"' in page
    # line-2 is not one the demo simulates: no control there.
    assert 'id="demo-look"' not in client.get("/lines/line-2").text


def test_operators_and_viewers_get_no_control_and_may_not_post(demo_console: DemoConsole) -> None:
    client = demo_console.client
    for user in ("otto", "vera"):
        login(client, user)
        assert 'id="demo-look"' not in client.get("/lines/line-1").text
        refused = _change(client, "line-1", "dim")
        assert refused.status_code == 403
        assert "only an admin may change a demo line&#39;s look" in refused.text
    assert demo_console.demo.look_of("gw-a") == "normal"


def test_an_admin_switches_the_look_and_the_page_shows_it(demo_console: DemoConsole) -> None:
    client = demo_console.client
    login(client, "ada")
    answer = _change(client, "line-1", "unseen")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/lines/line-1#demo-look"
    assert demo_console.demo.look_of("gw-a") == "unseen"
    assert '<strong id="demo-look-now">unseen</strong>' in client.get("/lines/line-1").text


def test_a_refused_or_failed_switch_is_the_error_page_in_words(demo_console: DemoConsole) -> None:
    client = demo_console.client
    login(client, "ada")
    refused = _change(client, "line-1", "foggy")
    assert refused.status_code == 400
    assert "unknown look &#39;foggy&#39;; looks: normal, unseen, dim, warm, mesh" in refused.text
    assert _change(client, "line-2", "dim").status_code == 404
    demo_console.demo.control.stop()
    page = client.get("/lines/line-1")
    assert page.status_code == 200
    assert re.search(
        r'<p class="error" role="alert">the demo&#39;s control at http://127\.0\.0\.1:\d+ did not', page.text
    )
    assert _change(client, "line-1", "dim").status_code == 502


def test_without_the_setting_there_is_no_control(console: Console) -> None:
    client = console.client
    login(client, "ada")
    assert "demo-look" not in client.get("/lines/line-1").text
    refused = _change(client, "line-1", "dim")
    assert refused.status_code == 404
    assert "this deployment has no demo control" in refused.text
