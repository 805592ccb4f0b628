"""One rollout's page: its target and measured gates, the bake figure as the engine runs it, its live
stream, and who may pause, resume and abort."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from cloud.console.rollout_view import bake_cell, gate_cell
from cloud.ota.health import gate_values
from cloud.ota.schemas import Thresholds
from protocol.ota import SlotHealth
from tests.support.console import ORIGIN, Console, create_rollout, login
from tests.support.console_live import BEFORE, Live, events_of, read_event, report_installed

RESTART = "restarts from 0 s on resume"


def _baked(page: str) -> str:
    found = re.search(r'<td data-k="baked" title="[^"]*">([^<]*)</td>', page)
    assert found is not None, "no bake figure on the page"
    return found.group(1)


def _healthy_since(live: Live, rollout: str) -> datetime:
    answer = live.client.get(f"/api/v1/rollouts/{rollout}", headers=live.token("vera")).json()
    return datetime.fromisoformat(answer["wave_healthy_since"])


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
    report_installed(live, rollout)
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


def test_viewer_is_offered_no_write_and_the_api_refuses_it(console: Console) -> None:
    client = console.client
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
    console: Console,
) -> None:
    client = console.client
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


def test_rollout_header_names_its_target_in_words(console: Console) -> None:
    login(console.client, "ada")
    rollout = create_rollout(console.client)
    page = console.client.get(f"/rollouts/{rollout}").text
    assert "target gateways gw-a ·" in page
    assert "&#34;gateways&#34;" not in page


def test_rollout_page_shows_measured_gates(live: Live) -> None:
    live.report("gw-a", "1.0", 0, BEFORE, "committed")
    rollout = live.create(thresholds={"max_error_rate": 0.05, "max_p95_latency_ms": 200})
    live.tick()
    bad = SlotHealth(inferences=80, errors=8, p95_latency_ms=150.0, defect_rate=0.1, mean_confidence=0.9)
    live.report("gw-a", "1.1", live.publisher.published[-1].revision, bad, "health_window")
    login(live.client, "vera")
    page = live.client.get(f"/rollouts/{rollout}").text
    row = re.search(r'<tr data-gateway="gw-a">.*?</tr>', page, re.S)
    assert row is not None
    assert re.search(r'data-gate="max_error_rate"[^>]*>10\.0% / max 5\.0%<', row.group(0))
    assert 'class="gate bad" data-gate="max_error_rate"' in row.group(0)
    assert re.search(
        r'class="gate ok" data-gate="max_p95_latency_ms"[^>]*>150 ms / max 200 ms<', row.group(0)
    )
    assert "status-unhealthy" in row.group(0)
    assert f'data-live="/console/rollouts/{rollout}/events"' in page
    assert 'id="pause"' not in page  # a viewer is offered no action


def test_rollout_stream_follows_a_pause_and_ends_on_abort(live: Live) -> None:
    rollout = live.create()
    client = live.client
    login(client, "vera")
    with client.stream("GET", f"/console/rollouts/{rollout}/events?limit=50") as stream:
        lines = stream.iter_lines()
        kind, first = read_event(lines)
        assert (kind, first["state"], first["ended"]) == ("rollout", "running", False)
        assert set(first["parts"]) == {"summary", "waves", "gates", "gateways", "events"}
        client.post(
            f"/api/v1/rollouts/{rollout}/pause", json={"reason": "shift check"}, headers=live.token("otto")
        )
        kind, paused = read_event(lines)
        assert paused["state"] == "paused"
        # The log and the bake figure changed: the other fragments are not sent again.
        assert set(paused["parts"]) == {"events", "gates"}
        assert "paused by" in paused["parts"]["events"]
        assert "paused · restarts from 0 s on resume" in paused["parts"]["gates"]
        client.post(
            f"/api/v1/rollouts/{rollout}/abort", json={"reason": "bad batch"}, headers=live.token("otto")
        )
        kind, aborted = read_event(lines)
        assert (aborted["state"], aborted["ended"]) == ("aborted", True)
        assert "bad batch" in aborted["parts"]["summary"]
        assert [line for line in lines if line] == []  # an ended rollout ends its stream


def test_rollout_stream_of_an_unknown_rollout_fails_cleanly(live: Live) -> None:
    login(live.client, "vera")
    sent = events_of(live.client.get("/console/rollouts/nope/events?limit=3").text)
    assert sent == [("failed", {"status": 404, "detail": "rollout 'nope' not found"})]


def test_operator_pauses_and_resumes_through_the_console(live: Live) -> None:
    rollout = live.create()
    login(live.client, "otto")
    page = live.client.get(f"/rollouts/{rollout}").text
    assert re.search(r'data-when="paused" hidden><button type="submit" id="resume"', page)
    paused = live.client.post(f"/rollouts/{rollout}/pause", data={"reason": "check"}, headers=ORIGIN)
    assert 'id="state">paused<' in paused.text
    assert re.search(
        r'data-when="running" hidden><input name="reason" placeholder="reason"><button type="submit" id="pause"',
        paused.text,
    )
    resumed = live.client.post(f"/rollouts/{rollout}/resume", headers=ORIGIN)
    assert 'id="state">running<' in resumed.text


def test_health_cells_read_as_a_minimum_and_signed_changes() -> None:
    """Fault: "Inferences 111 of 1" read like a fraction, and shifts were shown unsigned. Promise:
    a minimum reads as one, changes are now minus before in points, and the verdict is unchanged."""
    t = Thresholds(
        max_defect_rate_shift=0.05, max_confidence_drop=0.1, min_inferences=0, min_defect_rate_parts=1000
    )
    health = SlotHealth(inferences=1111, errors=0, defect_rate=0.072, mean_confidence=0.95).model_dump()
    before = {"defect_rate": 0.083, "mean_confidence": 0.90, "inferences": 5000}
    cells = {g["gate"]: gate_cell(g) for g in gate_values(health, before, t)}
    assert cells["min_inferences"]["text"] == "1111, at least 1"
    assert cells["max_defect_rate_shift"]["text"] == "-1.1 pts: now 7.2%, before 8.3% · ±5.0 pts"
    assert cells["max_defect_rate_shift"]["cls"] == "ok"
    assert (
        cells["max_confidence_drop"]["text"] == "+5.0 pts: now 95.0%, before 90.0% · fall of at most 10.0 pts"
    )
    assert cells["max_confidence_drop"]["cls"] == "ok"  # a rise in confidence is no drop

    worse = {**health, "defect_rate": 0.15, "mean_confidence": 0.7}
    cells = {g["gate"]: gate_cell(g) for g in gate_values(worse, before, t)}
    assert cells["max_defect_rate_shift"]["text"].startswith("+6.7 pts: now 15.0%, before 8.3%")
    assert cells["max_defect_rate_shift"]["cls"] == "bad"
    assert cells["max_confidence_drop"]["text"].startswith("-20.0 pts: now 70.0%")
    assert cells["max_confidence_drop"]["cls"] == "bad"
    assert "on 1111 parts now, 5000 before: z +6.9" in cells["max_defect_rate_shift"]["title"]
    # Too few parts since the update: the change shows, grey, with how many parts are still awaited.
    early = {g["gate"]: gate_cell(g) for g in gate_values({**worse, "inferences": 400}, before, t)}
    assert early["max_defect_rate_shift"]["text"] == (
        "+6.7 pts: now 15.0%, before 8.3% · ±5.0 pts · not judged yet: 400 of 1000 parts since the update"
    )
    assert early["max_defect_rate_shift"]["cls"] == "na"
    off = {
        g["gate"]: gate_cell(g) for g in gate_values(worse, before, Thresholds(max_defect_rate_shift=None))
    }
    assert off["max_defect_rate_shift"]["text"] == "+6.7 pts: now 15.0%, before 8.3% (no limit)"
