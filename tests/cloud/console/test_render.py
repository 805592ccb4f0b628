"""How the console writes raw values: targets, slot states, event details and alert values in words."""

from __future__ import annotations

from cloud.console.render import alert_value, event_details, slot_state, target_summary


def test_readable_forms_of_raw_values() -> None:
    assert target_summary({"gateways": ["gw-2"], "line": None, "site": "x", "tags": ["a", "b"]}) == (
        "gateways gw-2 · site x · tags a, b"
    )
    assert target_summary({"gateways": [], "tags": [], "line": "line-1", "site": None}) == "line line-1"
    assert target_summary(None) == "-"
    active, target = {"version": "1.1.0"}, {"version": "1.2.0"}
    assert slot_state({"active": active, "phase": "committed"}) == "running 1.1.0"
    assert slot_state({"active": active, "target": target, "phase": "rolled_back", "error": "p95 high"}) == (
        "running 1.1.0 · update 1.2.0 rolled back: p95 high"
    )
    assert slot_state({"active": active, "target": target, "phase": "health_window"}) == (
        "running 1.1.0 · installing 1.2.0 (health window)"
    )
    assert event_details("outbox_shed", {"first_seq": 1, "last_seq": 40}) == "first seq 1 · last seq 40"
    assert event_details("ota", {}) == "-"
    assert alert_value(412.4, "gateway_offline") == "412 s"
    assert alert_value(38, "outbox_backlog") == "38 items"
    assert alert_value(15.84, "defect_rate") == "15.8%"
