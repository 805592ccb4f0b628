"""The console in headless Chromium against a real stack: login, live lines, pictures, roles."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from cloud.alerts.rules import evaluate_all
from cloud.db import make_engine, make_sessionmaker
from tests.browser.stack import LINES, PASSWORD, Stack

TIMEOUT_MS = 15_000


def log_in(browser: Browser, stack: Stack, user: str) -> Page:
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{stack.url}/")
    expect(page).to_have_url(f"{stack.url}/login?next=/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#who")).to_contain_text(user)
    return page


def create_rollout(stack: Stack) -> str:
    body = {"model_name": "defect-cnn", "version": "1.0", "target": {"gateways": ["gw-a1"]}, "waves": "100%",
            "bake_s": 600}  # fmt: skip
    answer = httpx.post(
        f"{stack.url}/api/v1/rollouts",
        json=body,
        headers={"Authorization": f"Bearer {stack.api_token('ada')}"},
    )
    assert answer.status_code == 201, answer.text
    rollout_id: str = answer.json()["id"]
    return rollout_id


def test_viewer_sees_three_lines_change_live_and_a_defect_picture(
    stack: Stack, browser: Browser, screenshots: Path
) -> None:
    create_rollout(stack)
    page = log_in(browser, stack, "vera")
    for line in LINES:
        expect(page.locator(f'[data-line="{line}"]')).to_be_visible()
    counter = page.locator('[data-line="line-a"] [data-k="results_hour"]')
    page.evaluate("window.__notReloaded = true")
    before = counter.inner_text()
    # The SSE stream, not a reload, must bring a bigger count (the feeder adds results every 0.5 s).
    page.wait_for_function(
        'before => document.querySelector(\'[data-line="line-a"] [data-k="results_hour"]\').textContent !== before',
        arg=before,
    )
    assert int(counter.inner_text()) > int(before)
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator('[data-line="line-b"] .spark svg polyline')).to_have_count(1)
    page.screenshot(path=str(screenshots / "overview.png"), full_page=True)
    page.set_viewport_size({"width": 768, "height": 1024})  # a tablet, portrait
    page.screenshot(path=str(screenshots / "overview-tablet.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 768})

    page.click('[data-line="line-a"]')
    expect(page.locator("h1")).to_contain_text("Line line-a")
    thumb = page.locator(".gallery a.thumb").first
    expect(thumb).to_be_visible()
    expect(page.locator(".gallery .thumb .box").first).to_be_attached()
    assert page.evaluate("document.querySelector('.gallery img').naturalWidth") > 0
    page.screenshot(path=str(screenshots / "line.png"), full_page=True)
    with page.context.expect_page() as opened:
        thumb.click()
    picture = opened.value
    picture.wait_for_load_state()
    assert picture.evaluate("document.contentType") == "image/jpeg"
    picture.close()

    for path, name in (("/gateways", "gateways"), ("/gateways/gw-a1", "gateway"), ("/models", "models")):
        page.goto(f"{stack.url}{path}")
        expect(page.locator("main h1")).to_be_visible()
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    expect(page.locator("main")).not_to_contain_text("Not allowed")

    page.goto(f"{stack.url}/rollouts")
    expect(page.locator("table")).to_contain_text("defect-cnn 1.0")
    expect(page.locator("#create-rollout")).to_have_count(0)  # not offered to a viewer...
    refused = page.evaluate(
        """async () => {
            const body = new URLSearchParams({model_name: "defect-cnn", version: "1.0", gateways: "gw-b1"});
            const answer = await fetch("/rollouts", {method: "POST", body});
            return [answer.status, await answer.text()];
        }"""
    )
    assert refused[0] == 403  # ...and refused by the API when sent anyway
    assert "needs the admin role" in refused[1]
    page.screenshot(path=str(screenshots / "rollouts-viewer.png"), full_page=True)


def test_operator_pauses_a_rollout_and_acknowledges_an_alert(
    stack: Stack, browser: Browser, screenshots: Path
) -> None:
    rollout_id = create_rollout(stack)
    token = stack.api_token("ada")
    rule = {"line": "line-a", "kind": "defect_rate", "threshold": 1, "window_s": 600}
    answer = httpx.post(
        f"{stack.url}/api/v1/alert-rules", json=rule, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 201, answer.text

    page = log_in(browser, stack, "otto")
    page.goto(f"{stack.url}/rollouts")
    expect(page.locator("#create-rollout")).to_have_count(0)
    page.click(f'a[href="/rollouts/{rollout_id}"]')
    expect(page.locator("#state")).to_have_text("running")
    page.fill("form[action$='/pause'] input[name=reason]", "checking line-a")
    page.click("#pause")
    expect(page.locator("#state")).to_have_text("paused")
    expect(page.locator("#resume")).to_be_visible()
    expect(page.locator("main table").last).to_contain_text("paused by")
    page.screenshot(path=str(screenshots / "rollout-paused.png"), full_page=True)

    page.wait_for_timeout(1000)  # let some defects arrive before the rule is evaluated
    engine = make_engine(stack.settings.db_url)
    try:
        evaluate_all(make_sessionmaker(engine))
    finally:
        engine.dispose()
    page.goto(f"{stack.url}/alerts")
    row = page.locator("#alerts tr", has_text="line-a").first
    expect(row).to_contain_text("defect_rate")
    row.locator("button", has_text="Acknowledge").click()
    expect(page.locator("#alerts tr", has_text="line-a").first).to_contain_text("otto")
    page.screenshot(path=str(screenshots / "alerts.png"), full_page=True)
    page.goto(f"{stack.url}/")
    expect(page.locator('[data-line="line-a"] [data-k="open_alerts"]')).to_have_text("1")

    page.click("text=Log out")
    expect(page).to_have_url(f"{stack.url}/login")
    page.screenshot(path=str(screenshots / "login.png"), full_page=True)
