"""Model drift in headless Chromium, on the running demo: a gateway's drift verdict (suspected,
confirmed, cleared; what moved, the statistic against its threshold) on its own page and its line's,
each changing in place as the gateway reports; and the model-drift alert an admin's rule opens.

The verdicts are a gateway's ``model_drift`` events, stored through the ingest service as the
demo's ingest worker stores what arrives over MQTT (tests/support/drift_wire.py writes them as
edge_agent's drift watch does). They come from a gateway of each test's own on line-1, born and
gone again, so the demo's own gateways (whose telemetry carries their real verdicts) are untouched
and the demo keeps its three online gateways.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Browser, expect

from cloud.alerts.rules import evaluate_all
from cloud.db import make_engine, make_sessionmaker
from protocol.messages import EventBatch, GatewayState, LoadedModel
from protocol.topics import Channel, TopicSpace
from tests.browser.stack import Stack, log_in
from tests.support.drift_wire import MODEL, drift_event
from tests.support.messages import SHA, ingest, state

LINE = "line-1"
SLOT = "defect"
LOOK = "warmth:up,brightness:up,score:up"  # what a new lamp over the belt moves
WHEN = "%Y-%m-%d %H:%M:%S"  # how the console writes a time


def _feed(stack: Stack, *messages: EventBatch | GatewayState) -> None:
    """Store ``messages`` through the ingest service, as the demo's ingest worker does."""
    topics = TopicSpace(stack.settings.topic_root)
    for message in messages:
        channel = Channel.EVENTS if isinstance(message, EventBatch) else Channel.STATE
        ingest(stack.settings.db_url, topics, message.gateway_id, channel, message)


def _evaluate_alerts(stack: Stack) -> None:
    """Evaluate every alert rule now, as the demo's beat does every 30 s."""
    engine = make_engine(stack.settings.db_url)
    try:
        evaluate_all(make_sessionmaker(engine))
    finally:
        engine.dispose()


def _gateway(stack: Stack) -> str:
    """A gateway of this test's own on line-1, serving defect-patchcore in slot defect, now gone."""
    gateway = f"gw-drift-{uuid.uuid4().hex[:8]}"
    name, _, version = MODEL.partition(" ")
    model = LoadedModel(name=name, version=version, sha256=SHA, slot=SLOT, task="defect")
    born = datetime.now(UTC) - timedelta(minutes=5)
    birth, death = (
        state(gateway, online, 1, at=born, line=LINE).model_copy(update={"models": (model,)})
        for online in (True, False)
    )
    _feed(stack, birth, death)
    return gateway


def test_a_gateways_drift_shows_on_its_page_and_its_lines_and_changes_as_it_reports(
    stack: Stack, browser: Browser, screenshots: Path
) -> None:
    gateway = _gateway(stack)
    suspected = datetime.now(UTC)
    _feed(stack, drift_event(gateway, suspected, "suspected", slot=SLOT, moved="warmth:up"))

    page = log_in(browser, stack, "viewer", f"/gateways/{gateway}")
    row = page.locator(f'#drift tr[data-drift="{gateway}/{SLOT}"]')
    expect(row.locator(".drift-state")).to_have_text("suspected")
    expect(row.locator(".drift-moved")).to_have_text("colour moved (warmth up)")
    expect(row).to_contain_text(MODEL)
    page.evaluate("window.__notReloaded = true")

    confirmed = suspected + timedelta(seconds=30)
    _feed(stack, drift_event(gateway, confirmed, "confirmed", slot=SLOT, moved=LOOK, score_ratio=3.1))
    expect(row.locator(".drift-state")).to_have_text("confirmed")  # brought by the page's live stream
    expect(row).to_have_class(re.compile(r"\bdrift-confirmed\b"))
    expect(row.locator(".drift-moved")).to_have_text(
        "light/colour moved (warmth up, brightness up), scores up 3.1x"
    )
    expect(row).to_contain_text("3.10x fit time")
    expect(row).to_contain_text(confirmed.strftime(WHEN))  # since the confirming report
    event = page.locator("#events tr", has_text="drift confirmed").first
    expect(event).to_contain_text("model_drift")
    expect(event).to_contain_text(
        "statistic > threshold: warmth 0.50 > 0.05, brightness 0.50 > 0.05, score 0.50 > 0.05"
    )
    expect(event).to_contain_text("100% flagged vs 1% at fit time")
    assert page.evaluate("window.__notReloaded") is True
    page.screenshot(path=str(screenshots / "gateway-drift.png"), full_page=True)

    page.goto(f"{stack.url}/lines/{LINE}")
    row = page.locator(f'#drift tr[data-drift="{gateway}/{SLOT}"]')
    expect(row.locator(f'a[href="/gateways/{gateway}"]')).to_have_text(gateway)
    expect(row.locator(".drift-state")).to_have_text("confirmed")
    expect(row.locator(".drift-moved")).to_have_text(
        "light/colour moved (warmth up, brightness up), scores up 3.1x"
    )
    page.locator("#drift-card").screenshot(path=str(screenshots / "line-drift.png"))

    page.evaluate("window.__notReloaded = true")
    _feed(stack, drift_event(gateway, confirmed + timedelta(minutes=2), "cleared", slot=SLOT))
    expect(row.locator(".drift-state")).to_have_text("ok")
    expect(row.locator(".drift-moved")).to_have_text("-")
    assert page.evaluate("window.__notReloaded") is True
    page.screenshot(path=str(screenshots / "line-drift-cleared.png"), full_page=True)


def test_the_demos_model_drift_rule_alerts_while_drift_is_confirmed_and_closes_when_cleared(
    stack: Stack, browser: Browser, screenshots: Path
) -> None:
    gateway = _gateway(stack)
    page = log_in(browser, stack, "operator", "/alerts")
    # The demo gives each camera line a model_drift rule at level 2 (simulators/demo_alerts.py).
    rule = page.locator("#rule-list tr", has_text="Model drift").filter(has_text=LINE)
    expect(rule).to_have_count(1)
    expect(rule).to_contain_text("confirmed (level 2)")
    expect(rule).to_contain_text("enabled")

    suspected = datetime.now(UTC)
    _feed(stack, drift_event(gateway, suspected, "suspected", slot=SLOT, moved="sharpness:down"))
    _evaluate_alerts(stack)
    page.reload()
    expect(page.locator("#alerts tr", has_text=gateway)).to_have_count(0)  # suspected is below level 2

    confirmed = suspected + timedelta(seconds=30)
    _feed(stack, drift_event(gateway, confirmed, "confirmed", slot=SLOT, moved="sharpness:down"))
    _evaluate_alerts(stack)
    page.reload()
    alert = page.locator("#alerts tr", has_text=gateway)
    expect(alert).to_have_count(1)
    expect(alert.locator(".message")).to_have_text(
        f"Model drift: model drift on {LINE} ({gateway}, slot {SLOT}, {MODEL}): focus moved (sharpness down)"
    )
    expect(alert.locator(".value-now")).to_have_text("confirmed")
    expect(alert.locator(".badge")).to_have_text("open")
    alert.locator("button", has_text="Acknowledge").click()
    expect(page.locator("#alerts tr", has_text=gateway)).to_contain_text(stack.users["operator"])
    page.screenshot(path=str(screenshots / "alerts-drift.png"), full_page=True)

    _feed(stack, drift_event(gateway, confirmed + timedelta(minutes=1), "cleared", slot=SLOT))
    _evaluate_alerts(stack)
    page.goto(f"{stack.url}/alerts")
    expect(page.locator("#alerts tr", has_text=gateway)).to_have_count(0)  # no longer open
    page.goto(f"{stack.url}/alerts?show=all")
    closed = page.locator("#alerts tr", has_text=gateway)
    expect(closed).to_have_count(1)
    expect(closed).to_contain_text("closed")
    page.screenshot(path=str(screenshots / "alerts-drift-closed.png"), full_page=True)
