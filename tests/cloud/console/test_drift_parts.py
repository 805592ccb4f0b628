"""Drift on the Line and gateway pages (drift_parts.html): each watched slot's state, what moved in
plain words, the score ratio and since when; model_drift events read as words in the event list;
whatever the gateway wrote stays text."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from cloud.alerts.rules import evaluate_all
from cloud.db import make_engine, make_sessionmaker
from protocol.topics import Channel
from tests.support.console import ORIGIN, Console, login
from tests.support.drift_wire import drift_event, drift_telemetry

LOOK = "warmth:up,brightness:up,score:up"
HOSTILE_MODEL = "<b>patchcore</b> 1.1.0"  # an event's details are free text from the gateway


def _row(page: str, key: str) -> str:
    found = re.search(rf'<tr data-drift="{key}" class="drift-(\w+)">(.*?)</tr>', page, re.S)
    assert found is not None, page[page.find('id="drift"') :][:1500]
    return f"{found.group(1)}: {found.group(2)}"


def test_line_and_gateway_pages_show_each_slots_drift(console: Console) -> None:
    now = datetime.now(UTC)  # after the seeded telemetry sample, which watches no slot
    console.ingest(
        "gw-a", Channel.EVENTS, drift_event("gw-a", now, "suspected", slot="camera-1", moved="warmth:up")
    )
    confirmed = now + timedelta(seconds=30)
    console.ingest(
        "gw-a",
        Channel.EVENTS,
        drift_event(
            "gw-a", confirmed, "confirmed", slot="camera-1", moved=LOOK, score_ratio=3.1, model=HOSTILE_MODEL
        ),
    )
    console.ingest(
        "gw-a",
        Channel.TELEMETRY,
        drift_telemetry("gw-a", confirmed + timedelta(seconds=5),
                        [("camera-1", "confirmed", ("warmth", "brightness", "score")), ("main", "ok", ())]),
    )  # fmt: skip
    login(console.client, "vera")
    line = console.client.get("/lines/line-1").text
    assert '<div data-part="drift">' in line
    row = _row(line, "gw-a/camera-1")
    assert row.startswith("confirmed: ")
    assert '<a href="/gateways/gw-a">gw-a</a>' in row
    assert '<span class="badge bad drift-state">confirmed</span>' in row
    assert "light/colour moved (warmth up, brightness up), scores up 3.1x" in row
    assert "3.10x fit time" in row
    assert confirmed.strftime("%Y-%m-%d %H:%M:%S") in row, "since the confirming event"
    assert "&lt;b&gt;patchcore&lt;/b&gt; 1.1.0" in row
    assert "<b>patchcore" not in line
    calm = _row(line, "gw-a/main")
    assert calm.startswith("ok: ")
    assert "defect-cnn 1.0" in calm, "the model loaded in the slot, from the gateway's birth"
    assert '<td class="drift-moved">-</td>' in calm
    assert "No gateway of this line reports drift" in console.client.get("/lines/line-2").text

    gateway = console.client.get("/gateways/gw-a").text
    assert "light/colour moved (warmth up, brightness up), scores up 3.1x" in _row(gateway, "gw-a/camera-1")
    assert "<th>Gateway</th>" not in gateway[gateway.find('id="drift"') :][:400], (
        "its own page needs no column"
    )
    events = console.table("/gateways/gw-a", "events")
    assert "model_drift" in events
    assert (
        "slot camera-1 · &lt;b&gt;patchcore&lt;/b&gt; 1.1.0 · light/colour moved (warmth up, brightness up), "
        "scores up 3.1x · statistic &gt; threshold: warmth 0.50 &gt; 0.05, brightness 0.50 &gt; 0.05, "
        "score 0.50 &gt; 0.05 · 100% flagged vs 1% at fit time · 100-frame window"
    ) in events
    assert "false alarm rate" not in events, "the per-signal figures stay in the API's details"
    assert "No slot of this gateway is watched for drift" in console.client.get("/gateways/gw-b").text


def test_a_model_drift_rule_is_made_from_the_form_and_its_alert_reads_as_a_level(console: Console) -> None:
    login(console.client, "ada")
    form = console.client.get("/alerts").text
    assert '<option value="model_drift" >Model drift (drift level)</option>' in form
    rule = {"line": "line-1", "kind": "model_drift", "threshold": "", "enabled": "on"}
    made = console.client.post("/alerts/rules", data=rule, headers=ORIGIN, follow_redirects=False)
    assert made.status_code == 303, made.text
    listed = console.client.get("/alerts").text
    assert "<td>Model drift</td><td>confirmed (level 2)</td><td>-</td>" in listed, "left empty: level 2"
    refused = console.client.post("/alerts/rules", data={**rule, "threshold": "5"}, headers=ORIGIN)
    assert refused.status_code == 422
    assert re.search(
        r'id="error-threshold" role="alert">Threshold: a model_drift rule alerts at drift level 2',
        refused.text,
    )

    now = datetime.now(UTC)
    console.ingest(
        "gw-a", Channel.EVENTS, drift_event("gw-a", now, "confirmed", slot="camera-1", moved="sharpness:down")
    )
    engine = make_engine(console.db_url)
    try:
        assert evaluate_all(make_sessionmaker(engine)).opened == 1
    finally:
        engine.dispose()
    alerts = console.table("/alerts", "alerts")
    assert (
        "Model drift: model drift on line-1 (gw-a, slot camera-1, defect-patchcore 1.1.0): focus moved (sharpness down)"
        in alerts
    )
    assert '<td class="nowrap value-now">confirmed</td>' in alerts
