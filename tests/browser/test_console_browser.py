"""The console in headless Chromium on the running demo, as a new user meets it after `make demo`.

Logins and URL come from the demo's banner; the lines, gateways and pictures are the demo's own
(real edge agents on simulated cameras), so what passes here is what a new user sees.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.browser.stack import LINES, Stack, open_offline_alert

TIMEOUT_MS = 15_000


def log_in(browser: Browser, stack: Stack, role: str) -> Page:
    user = stack.users[role]
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{stack.url}/")
    expect(page).to_have_url(f"{stack.url}/login?next=/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", stack.password)
    page.click("button[type=submit]")
    expect(page.locator("#who")).to_contain_text(user)
    return page


def _picture_line(stack: Stack) -> str:
    """A camera line with a defect picture (the stack waited for one on line-1 or line-2)."""
    for line in LINES[:2]:
        if any(d["has_thumbnail"] for d in stack.get(f"/lines/{line}/defects", limit=20)):
            return line
    raise AssertionError("no defect picture on line-1 or line-2")


def test_viewer_sees_the_demo_lines_live_pictures_gateways_and_models(
    stack: Stack, rollout: str, browser: Browser, screenshots: Path
) -> None:
    page = log_in(browser, stack, "viewer")
    for line in LINES:
        expect(page.locator(f'[data-line="{line}"]')).to_be_visible()
    page.evaluate("window.__notReloaded = true")
    for line in LINES[:2]:
        counter = page.locator(f'[data-line="{line}"] [data-k="results_hour"]')
        before = counter.inner_text()
        # The SSE stream, not a reload, must bring a bigger count (the cameras run at 2 fps).
        page.wait_for_function(
            "([sel, before]) => document.querySelector(sel).textContent !== before",
            arg=[f'[data-line="{line}"] [data-k="results_hour"]', before],
        )
        assert int(counter.inner_text()) > int(before)
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator('[data-line="line-2"] .spark svg polyline')).to_have_count(1)
    page.screenshot(path=str(screenshots / "overview.png"), full_page=True)
    page.set_viewport_size({"width": 768, "height": 1024})  # a tablet, portrait
    page.screenshot(path=str(screenshots / "overview-tablet.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 768})

    line = _picture_line(stack)
    page.click(f'[data-line="{line}"]')
    expect(page.locator("h1")).to_contain_text(f"Line: {line}")
    thumb = page.locator(".gallery a.thumb").first
    expect(thumb).to_be_visible()
    page.wait_for_function("document.querySelector('.gallery a.thumb img').naturalWidth > 0")
    page.screenshot(path=str(screenshots / "line.png"), full_page=True)
    with page.context.expect_page() as opened:
        thumb.click()
    picture = opened.value
    picture.wait_for_load_state()
    assert picture.evaluate("document.contentType") == "image/jpeg"
    picture.close()

    page.goto(f"{stack.url}/gateways")
    # A gateway whose keepalive lapsed on a loaded machine shows offline until it reconnects.
    expect(page.locator("tr.online")).to_have_count(3, timeout=30_000)
    for gw in ("gw-1", "gw-2", "gw-3"):
        expect(page.locator("tr.online", has_text=gw)).to_contain_text("online")
    expect(page.locator("tr.online", has_text="gw-1")).to_contain_text("defect-patchcore")
    expect(page.locator("tr.online", has_text="gw-3")).to_contain_text("parcel-detector")
    # The list is live: the stream swaps gw-1's row (its last seen moves with every result) in place.
    page.evaluate("window.__notReloaded = true")
    last_seen = 'tr[data-gateway="gw-1"] td:nth-child(4)'
    before = page.locator(last_seen).inner_text()
    page.wait_for_function(
        "([sel, before]) => document.querySelector(sel).textContent !== before", arg=[last_seen, before]
    )
    assert page.evaluate("window.__notReloaded") is True
    page.screenshot(path=str(screenshots / "gateways.png"), full_page=True)
    page.goto(f"{stack.url}/gateways/gw-1")
    expect(page.locator("main h1")).to_contain_text("Gateway gw-1")
    expect(page.locator("main")).to_contain_text("notes: notes-minilm")
    page.screenshot(path=str(screenshots / "gateway.png"), full_page=True)
    name, version = stack.release
    page.goto(f"{stack.url}/models")
    expect(page.locator(f"#model-{name}")).to_contain_text(version)
    page.screenshot(path=str(screenshots / "models.png"), full_page=True)
    expect(page.locator("main")).not_to_contain_text("Not allowed")

    page.goto(f"{stack.url}/rollouts")
    expect(page.locator("table")).to_contain_text(f"{name} {version}")
    expect(page.locator("#create-rollout")).to_have_count(0)  # not offered to a viewer...
    refused = page.evaluate(
        """async ([name, version]) => {
            const body = new URLSearchParams({model_name: name, version, gateways: "gw-2"});
            const answer = await fetch("/rollouts", {method: "POST", body});
            return [answer.status, await answer.text()];
        }""",
        [name, version],
    )
    assert refused[0] == 403  # ...and refused by the API when sent anyway
    assert "needs the admin role" in refused[1]
    page.screenshot(path=str(screenshots / "rollouts-viewer.png"), full_page=True)


def test_operator_pauses_a_rollout_acknowledges_an_alert_and_reads_gateway_events(
    stack: Stack, rollout: str, browser: Browser, screenshots: Path
) -> None:
    gone = open_offline_alert(stack)
    if stack.get(f"/rollouts/{rollout}")["state"] == "paused":  # another test paused the shared one
        headers = {"Authorization": f"Bearer {stack.admin_token}"}
        resumed = httpx.post(
            f"{stack.url}/api/v1/rollouts/{rollout}/resume",
            json={"reason": "test"},
            headers=headers,
            timeout=30,
        )
        assert resumed.status_code == 200, resumed.text
    page = log_in(browser, stack, "operator")
    page.goto(f"{stack.url}/rollouts")
    expect(page.locator("#create-rollout")).to_have_count(0)
    page.click(f'a[href="/rollouts/{rollout}"]')
    expect(page.locator("#state")).to_have_text("running")
    page.fill("form[action$='/pause'] input[name=reason]", "checking line-2")
    page.click("#pause")
    expect(page.locator("#state")).to_have_text("paused")
    expect(page.locator("#resume")).to_be_visible()
    page.screenshot(path=str(screenshots / "rollout-paused.png"), full_page=True)

    page.goto(f"{stack.url}/alerts")
    expect(page.locator("#create-rule")).to_have_count(0)  # rules are an admin's
    row = page.locator("#alerts tr", has_text=gone).first
    expect(row).to_contain_text("Gateway offline")
    row.locator("button", has_text="Acknowledge").click()
    expect(page.locator("#alerts tr", has_text=gone).first).to_contain_text(stack.users["operator"])
    page.screenshot(path=str(screenshots / "alerts.png"), full_page=True)
    page.goto(f"{stack.url}/")
    expect(page.locator('[data-line="line-3"] [data-k="open_alerts"]')).to_have_text(re.compile(r"[1-9]"))

    # gw-2 reports each OTA step of the rollout's release as an event, listed under OTA history.
    deadline = time.monotonic() + 60
    page.goto(f"{stack.url}/gateways/gw-2")
    while page.locator("#ota-history tr", has_text="ota").count() == 0:
        assert time.monotonic() < deadline, "gw-2 reported no OTA event within 60 s"
        page.wait_for_timeout(1000)
        page.reload()
    expect(page.locator("#ota-history")).to_contain_text(stack.release[1])
    expect(page.locator("#events tr", has_text="ota")).to_have_count(0)
    page.screenshot(path=str(screenshots / "gateway-events.png"), full_page=True)

    page.click("text=Log out")
    expect(page).to_have_url(f"{stack.url}/login")
    page.screenshot(path=str(screenshots / "login.png"), full_page=True)


def test_admin_adds_an_alert_rule_with_the_form(stack: Stack, browser: Browser, screenshots: Path) -> None:
    page = log_in(browser, stack, "admin")
    page.goto(f"{stack.url}/alerts")
    form = page.locator("#create-rule")
    form.locator("input[name=line]").fill("line-1")
    form.locator("select[name=kind]").select_option("defect_rate")
    form.locator("input[name=threshold]").fill("150")
    form.locator("input[name=window_s]").fill("900")
    form.locator("button[type=submit]").click()
    # The API's refusal sits beside the field it names, and what was typed is still there.
    expect(page.locator("#error-threshold")).to_contain_text("a defect rate is a percent (0-100)")
    expect(page.locator("#create-rule input[name=window_s]")).to_have_value("900")
    page.locator("#create-rule input[name=threshold]").fill("12.5")
    page.locator("#create-rule button[type=submit]").click()
    row = page.locator("#rule-list tr", has_text="Defect rate").filter(has_text="900 s")
    expect(row).to_contain_text("line-1")
    expect(row).to_contain_text("12.5")
    expect(row).to_contain_text("enabled")
    page.screenshot(path=str(screenshots / "alerts-rules.png"), full_page=True)
