"""The Rollout page's bake figure as the engine runs it, and the live Rollouts list (SSE)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cloud.console.rollout_view import bake_cell
from protocol.topics import TopicSpace
from tests.cloud.console_live_helpers import BEFORE, ORIGIN, Live, events_of, login, read_event, running_live

RESTART = "restarts from 0 s on resume"


@pytest.fixture
def live(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Live]:
    with running_live(db_url, tmp_path, topic_space) as running:
        yield running


def _baked(page: str) -> str:
    found = re.search(r'<td data-k="baked" title="[^"]*">([^<]*)</td>', page)
    assert found is not None, "no bake figure on the page"
    return found.group(1)


def _installed(live: Live, rollout: str) -> None:
    """gw-a installs the rollout's version healthily and the engine sees it (the bake starts)."""
    live.report("gw-a", "1.1", live.publisher.published[-1].revision, BEFORE, "committed")
    live.tick()


def _healthy_since(live: Live, rollout: str) -> datetime:
    answer = live.client.get(f"/api/v1/rollouts/{rollout}", headers=live.token("vera")).json()
    return datetime.fromisoformat(answer["wave_healthy_since"])


# --- Bake figure ------------------------------------------------------------------------------


def test_bake_figure_follows_the_engine() -> None:
    base: dict[str, Any] = {
        "state": "running",
        "wave_healthy_since": "2026-11-29T10:00:00+00:00",
        "events": [],
    }
    at = {"at": "2026-11-29T10:00:20+00:00", "kind": "paused"}
    now = datetime.fromisoformat("2026-11-29T10:08:20+00:00")
    assert bake_cell(base, now)["text"] == "500 s"
    # Paused 20 s into the bake: the figure stays at 20 s however long the pause lasts.
    paused = {
        **base,
        "state": "paused",
        "events": [{"at": "2026-11-29T09:59:00+00:00", "kind": "paused"}, at],
    }
    assert bake_cell(paused, now)["text"] == f"paused at 20 s · {RESTART}"
    not_baking = {**paused, "wave_healthy_since": None}
    assert bake_cell(not_baking, now)["text"] == f"paused · {RESTART}"
    assert bake_cell({**base, "wave_healthy_since": None}, now)["text"] == "-"  # resumed, not yet judged
    assert bake_cell({**base, "state": "completed"}, now)["text"] == "done"
    assert bake_cell({**base, "state": "aborted"}, now)["text"] == "-"


def test_rollout_page_freezes_the_bake_while_paused_and_restarts_it_on_resume(live: Live) -> None:
    live.report("gw-a", "1.0", 0, BEFORE, "committed")
    rollout = live.create()
    live.tick()
    _installed(live, rollout)
    login(live.client, "otto")
    assert re.fullmatch(r"\d+ s", _baked(live.client.get(f"/rollouts/{rollout}").text))
    baking_since = _healthy_since(live, rollout)

    paused = live.client.post(f"/rollouts/{rollout}/pause", data={"reason": "check"}, headers=ORIGIN).text
    frozen = _baked(paused)
    assert re.fullmatch(rf"paused at \d+ s · {RESTART}", frozen)
    live.tick()  # the engine skips a paused rollout
    assert _baked(live.client.get(f"/rollouts/{rollout}").text) == frozen

    resumed = live.client.post(f"/rollouts/{rollout}/resume", headers=ORIGIN).text
    assert _baked(resumed) == "-"  # the engine forgot the bake; it starts again on its next tick
    live.tick()
    assert re.fullmatch(r"\d+ s", _baked(live.client.get(f"/rollouts/{rollout}").text))
    assert _healthy_since(live, rollout) > baking_since  # counted from the resume, not from before


# --- Live Rollouts list -----------------------------------------------------------------------


def test_rollouts_page_is_wired_to_its_stream_for_every_role(live: Live) -> None:
    rollout = live.create()
    for user in ("vera", "ada"):
        login(live.client, user)
        page = live.client.get("/rollouts").text
        assert 'data-live="/console/rollouts/events"' in page
        assert '<script src="/console/static/live.js"' in page
        row = re.search(rf'<tr data-rollout="{rollout}">.*?</tr>', page, re.S)
        assert row is not None
        assert "state-running" in row.group(0)
        assert "0/1 installed" in row.group(0)
    assert 'addEventListener("rollouts"' in live.client.get("/console/static/live.js").text


def test_rollouts_stream_follows_state_and_progress_and_ends_on_logout(live: Live) -> None:
    client = live.client
    live.report("gw-a", "1.0", 0, BEFORE, "committed")
    first_rollout = live.create()
    live.tick()
    assert client.get("/console/rollouts/events?limit=1").status_code == 401
    login(client, "vera")
    with client.stream("GET", "/console/rollouts/events?limit=50") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        kind, first = read_event(lines)
        assert (kind, first["states"]) == ("rollouts", {first_rollout: "running"})
        assert "0/1 installed" in first["parts"]["rollouts"]

        _installed(live, first_rollout)
        _, installed = read_event(lines)
        assert "1/1 installed" in installed["parts"]["rollouts"]

        client.post(
            f"/api/v1/rollouts/{first_rollout}/pause", json={"reason": "x"}, headers=live.token("otto")
        )
        _, paused = read_event(lines)
        assert paused["states"] == {first_rollout: "paused"}
        assert "state-paused" in paused["parts"]["rollouts"]

        second = live.create(target={"gateways": ["gw-b"]})  # a new rollout shows up without reload
        _, added = read_event(lines)
        assert added["states"] == {second: "running", first_rollout: "paused"}
        assert added["parts"]["rollouts"].index(second) < added["parts"]["rollouts"].index(first_rollout)

        client.post(
            f"/api/v1/rollouts/{first_rollout}/abort", json={"reason": "x"}, headers=live.token("otto")
        )
        _, aborted = read_event(lines)
        row = re.search(rf'<tr data-rollout="{first_rollout}">.*?</tr>', aborted["parts"]["rollouts"], re.S)
        assert row is not None
        assert "state-aborted" in row.group(0)
        assert "1/1 started · <span" in row.group(0)  # the reason given, then what the abort did
        assert "1 sent back, 0 never left their version" in row.group(0)

        client.post("/logout", headers=ORIGIN)
        kind, gone = read_event(lines)
    assert (kind, gone["status"]) == ("gone", 401)


def test_rollouts_stream_is_idle_while_nothing_changes(live: Live) -> None:
    live.create()
    login(live.client, "vera")
    sent = events_of(live.client.get("/console/rollouts/events?limit=2").text)
    assert [kind for kind, _ in sent] == ["rollouts", ""]
