"""The rollout API's measured health gates with role checks, and the admins' create form round trip."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.ota.health import gate_values, health_problem
from cloud.ota.schemas import Thresholds
from protocol.ota import SlotHealth
from protocol.topics import TopicSpace
from tests.cloud.console_live_helpers import (
    BEFORE,
    FULL_FORM,
    ORIGIN,
    Live,
    login,
    running_live,
)


@pytest.fixture
def live(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Live]:
    with running_live(db_url, tmp_path, topic_space) as running:
        yield running


# --- Rollout API: health gates with measured values ------------------------------------------


def test_rollout_api_shows_each_gate_measured_against_its_threshold(live: Live) -> None:
    live.report("gw-a", "1.0", 0, BEFORE, "committed")
    thresholds = {"max_error_rate": 0.05, "max_p95_latency_ms": 200, "max_defect_rate_shift": 0.1,
                  "min_inferences": 50}  # fmt: skip
    rollout = live.create(thresholds=thresholds)
    waiting = live.client.get(f"/api/v1/rollouts/{rollout}", headers=live.token("vera")).json()
    assert waiting["gateways"]["gw-a"] == {
        "wave": 1, "status": "waiting", "reason": None, "phase": None, "active_version": None,
        "reported_at": None, "gates": [], "at_abort": None,
    }  # fmt: skip
    live.tick()  # the first wave starts; the baseline is what gw-a reported before
    revision = live.publisher.published[-1].revision

    # Running 1.1 in its own health window (not committed yet: pending), with too few inferences
    # yet: nothing is judged, the values already show.
    live.report(
        "gw-a", "1.1", revision, SlotHealth(inferences=20, errors=5, p95_latency_ms=300.0), "health_window"
    )
    early = live.client.get(f"/api/v1/rollouts/{rollout}", headers=live.token("vera")).json()["gateways"][
        "gw-a"
    ]
    assert early["status"] == "pending"
    gates = {g["gate"]: g for g in early["gates"]}
    assert gates["min_inferences"] == {"gate": "min_inferences", "measured": 20, "limit": 50, "ok": False,
                                       "now": None, "before": None}  # fmt: skip
    assert gates["max_error_rate"]["measured"] == pytest.approx(0.25)
    assert gates["max_error_rate"]["ok"] is None
    assert gates["max_p95_latency_ms"]["ok"] is None

    bad = SlotHealth(inferences=80, errors=8, p95_latency_ms=250.0, defect_rate=0.3, mean_confidence=0.7)
    live.report("gw-a", "1.1", revision, bad, "health_window")
    later = live.client.get(f"/api/v1/rollouts/{rollout}", headers=live.token("vera")).json()
    gw = later["gateways"]["gw-a"]
    assert gw["status"] == "unhealthy"
    assert gw["reason"] == "error rate 0.100 > 0.05"
    assert (gw["phase"], gw["active_version"]) == ("health_window", "1.1")
    gates = {g["gate"]: g for g in gw["gates"]}
    assert gates["min_inferences"]["ok"] is True
    assert (gates["max_error_rate"]["measured"], gates["max_error_rate"]["ok"]) == (pytest.approx(0.1), False)
    assert (gates["max_p95_latency_ms"]["measured"], gates["max_p95_latency_ms"]["limit"]) == (250.0, 200.0)
    assert gates["max_p95_latency_ms"]["ok"] is False
    shift = gates["max_defect_rate_shift"]
    assert (shift["measured"], shift["now"], shift["before"], shift["ok"]) == (
        pytest.approx(0.2),
        0.3,
        0.1,
        False,
    )
    # A gate the rollout does not set is shown with its value but not judged.
    drop = gates["max_confidence_drop"]
    assert (drop["measured"], drop["limit"], drop["ok"]) == (pytest.approx(0.2), None, None)
    assert later["wave_started_at"] is not None
    assert later["as_of"] >= later["wave_started_at"]


def test_rollout_api_roles(live: Live) -> None:
    rollout = live.create()
    client = live.client
    body = {"model_name": "defect-cnn", "version": "1.1", "target": {"gateways": ["gw-a"]}}
    assert client.post("/api/v1/rollouts", json=body).status_code == 401
    for user in ("vera", "otto"):
        refused = client.post("/api/v1/rollouts", json=body, headers=live.token(user))
        assert refused.status_code == 403, user
        assert "needs the admin role" in refused.text
    assert client.get(f"/api/v1/rollouts/{rollout}", headers=live.token("vera")).status_code == 200
    assert (
        client.post(f"/api/v1/rollouts/{rollout}/pause", json={}, headers=live.token("vera")).status_code
        == 403
    )
    paused = client.post(
        f"/api/v1/rollouts/{rollout}/pause", json={"reason": "x"}, headers=live.token("otto")
    )
    assert paused.status_code == 200
    assert paused.json()["state"] == "paused"
    assert paused.json()["gateways"]["gw-a"]["status"] == "waiting"


def test_gate_values_agree_with_the_engine_verdict() -> None:
    """Whatever the numbers, a gate shows failed exactly when the engine finds the gateway unhealthy."""
    rng = random.Random(5)

    def maybe(value: float) -> float | None:
        return None if rng.random() < 0.2 else value

    for _ in range(2000):
        health = {"inferences": rng.randint(0, 60), "errors": rng.randint(0, 6), "p95_latency_ms": maybe(rng.uniform(5, 300)),
                  "defect_rate": maybe(rng.random()), "mean_confidence": maybe(rng.random())}  # fmt: skip
        baseline = {"defect_rate": maybe(rng.random()), "mean_confidence": maybe(rng.random())}
        t = Thresholds(
            max_error_rate=maybe(rng.uniform(0.01, 0.2)), max_p95_latency_ms=maybe(rng.uniform(20, 250)),
            max_defect_rate_shift=maybe(rng.uniform(0.05, 0.5)), max_confidence_drop=maybe(rng.uniform(0.05, 0.5)),
            min_inferences=rng.randint(0, 40),
        )  # fmt: skip
        gates = gate_values(health, baseline, t)
        failed = [g["gate"] for g in gates if g["ok"] is False and g["gate"] != "min_inferences"]
        problem = health_problem(health, baseline, t)
        assert (problem is None) == (not failed), (health, baseline, t, gates, problem)


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
        "max_confidence_drop": 0.1, "min_inferences": 20, "install_timeout_s": 300.0,
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
