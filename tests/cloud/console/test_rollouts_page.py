"""The Rollouts list: the admins' create form round trip (slot optional), its refusals, and the list's
live stream (SSE)."""

from __future__ import annotations

import re

from tests.support.console import ORIGIN, login
from tests.support.console_live import BEFORE, FULL_FORM, Live, events_of, read_event, report_installed


def test_admin_form_offers_what_the_api_accepts(live: Live) -> None:
    login(live.client, "ada")
    page = live.client.get("/rollouts").text
    form = page[page.index('id="create-rollout"') :]
    assert re.search(
        r'<optgroup label="defect-cnn" data-model="defect-cnn">\s*<option value="1.1" >1.1</option><option value="1.0"',
        form,
    )
    for name in ("slot", "line", "site", "tags", "gateways", "waves", "bake_s", "max_failure_ratio", "max_error_rate",
                 "max_p95_latency_ms", "max_defect_rate_shift", "max_confidence_drop", "min_inferences", "install_timeout_s"):  # fmt: skip
        assert f'name="{name}"' in form, name
    assert '<datalist id="known-lines"><option value="line-1"><option value="line-2"></datalist>' in form
    # The slots the gateways reported in their births, none chosen in advance.
    assert (
        '<option value="">where this model (or its task) runs</option><option value="main">main</option></select>'
        in form
    )
    assert 'name="max_error_rate" inputmode="decimal" value="0.05"' in form  # the API's own default


def test_create_form_round_trip(live: Live) -> None:
    login(live.client, "ada")
    answer = live.client.post("/rollouts", data=FULL_FORM, headers=ORIGIN, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    rollout = answer.headers["location"].removeprefix("/rollouts/")
    r = live.client.get(f"/api/v1/rollouts/{rollout}", headers=live.token("vera")).json()
    assert (r["model_name"], r["version"], r["slot"], r["bake_s"]) == ("defect-cnn", "1.1", "main", 30.0)
    assert r["target"] == {"gateways": ["gw-b"], "tags": [], "line": "line-1", "site": None, "cpu_class": []}
    assert r["waves"] == [1, 2]
    assert sorted(r["gateways"]) == ["gw-a", "gw-b"]
    assert r["thresholds"] == {
        "max_failure_ratio": 0.5, "max_error_rate": 0.02, "max_p95_latency_ms": 150.0, "max_defect_rate_shift": None,
        "max_confidence_drop": 0.1, "min_inferences": 20, "min_defect_rate_parts": 5000, "install_timeout_s": 300.0,
    }  # fmt: skip
    assert live.client.get(answer.headers["location"]).status_code == 200


def test_create_form_shows_the_api_errors_next_to_the_fields_and_keeps_the_values(live: Live) -> None:
    login(live.client, "ada")
    wrong = {**FULL_FORM, "waves": "1,lots", "bake_s": "-5", "max_error_rate": "2", "site": "hall <b>7</b>"}
    answer = live.client.post("/rollouts", data=wrong, headers=ORIGIN)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert re.search(
        r'id="error-waves"[^>]*>wave &#39;lots&#39; in &#39;1,lots&#39; is neither a count', page
    )
    assert re.search(r'id="error-bake_s"[^>]*>Input should be greater than or equal to 0<', page)
    assert re.search(r'id="error-max_error_rate"[^>]*>Input should be less than or equal to 1<', page)
    assert 'name="waves" value="1,lots"' in page
    assert 'name="bake_s" inputmode="decimal" value="-5"' in page
    assert 'value="hall &lt;b&gt;7&lt;/b&gt;"' in page  # kept, and escaped
    assert re.search(r'<option value="1.1" selected>', page)
    assert live.client.get("/api/v1/rollouts", headers=live.token("vera")).json() == []


def test_create_form_shows_registry_and_target_refusals(live: Live) -> None:
    login(live.client, "ada")
    unknown = live.client.post("/rollouts", data={**FULL_FORM, "version": "9.9"}, headers=ORIGIN)
    assert unknown.status_code == 404
    assert re.search(
        r'id="error-version"[^>]*>model defect-cnn version 9.9 is not in the registry<', unknown.text
    )
    nobody = live.client.post(
        "/rollouts", data={**FULL_FORM, "line": "line-9", "gateways": ""}, headers=ORIGIN
    )
    assert nobody.status_code == 422
    # Names what was asked beside what the gateways have, so the fix is in the message.
    assert re.search(
        r'id="error-target"[^>]*>the target matches no gateway with line &#39;line-9&#39; '
        r"\(gateways have line: line-1, line-2\)<",
        nobody.text,
    )
    assert 'name="line" list="known-lines" value="line-9"' in nobody.text
    # A slot none of the targeted gateways has would be ignored by them: refused, by the slot field.
    no_slot = live.client.post("/rollouts", data={**FULL_FORM, "slot": "parcels"}, headers=ORIGIN)
    assert no_slot.status_code == 422
    assert re.search(
        r"id=\"error-slot\"[^>]*>slot &#39;parcels&#39; is not a model slot of gw-a, gw-b \(they have: main\)",
        no_slot.text,
    )
    assert '<option value="parcels" selected>' not in no_slot.text  # not offered: no gateway has it


def test_only_admins_get_the_form_and_the_api_refuses_the_others(live: Live) -> None:
    for user in ("vera", "otto"):
        login(live.client, user)
        assert 'id="create-rollout"' not in live.client.get("/rollouts").text
        refused = live.client.post("/rollouts", data=FULL_FORM, headers=ORIGIN)
        assert refused.status_code == 403, user
        assert "needs the admin role" in refused.text
    assert live.client.get("/api/v1/rollouts", headers=live.token("vera")).json() == []


def test_create_form_checks_the_origin(live: Live) -> None:
    login(live.client, "ada")
    refused = live.client.post("/rollouts", data=FULL_FORM, headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403
    assert "console form refused" in refused.text


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

        report_installed(live, first_rollout)
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


def test_console_form_without_slot_round_trips_to_the_chosen_slot(live: Live) -> None:
    """Promise: the form may leave the slot empty; the rollout takes the slot running the model."""
    login(live.client, "ada")
    answer = live.client.post(
        "/rollouts", data={**FULL_FORM, "slot": ""}, headers=ORIGIN, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    rollout = answer.headers["location"].removeprefix("/rollouts/")
    got = live.client.get(f"/api/v1/rollouts/{rollout}", headers=live.token("vera")).json()
    assert (got["slot"], sorted(got["gateways"])) == ("main", ["gw-a", "gw-b"])
