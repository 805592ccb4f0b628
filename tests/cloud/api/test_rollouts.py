"""The rollout API's measured health gates, and who may read and act on rollouts."""

from __future__ import annotations

import pytest

from protocol.ota import SlotHealth
from tests.support.console_live import BEFORE, Live


def test_rollout_api_shows_each_gate_measured_against_its_threshold(live: Live) -> None:
    live.report("gw-a", "1.0", 0, BEFORE, "committed")
    thresholds = {"max_error_rate": 0.05, "max_p95_latency_ms": 200, "max_defect_rate_shift": 0.1,
                  "min_inferences": 50, "min_defect_rate_parts": 50}  # fmt: skip
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
                                       "now": None, "before": None, "note": None}  # fmt: skip
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
