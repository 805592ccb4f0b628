"""The live Line and Rollout pages and the new-rollout form in headless Chromium, on the running demo."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Browser, expect

from tests.browser.stack import LINES, Stack, log_in

PICTURE_TIMEOUT_MS = 90_000  # defect pictures come as the demo's camera lines produce defects


def act(stack: Stack, rollout: str, action: str) -> None:
    """Pause or resume ``rollout`` through the API, as factoryctl would."""
    headers = {"Authorization": f"Bearer {stack.api_token(stack.users['operator'])}"}
    answer = httpx.post(
        f"{stack.url}/api/v1/rollouts/{rollout}/{action}",
        json={"reason": "browser test"},
        headers=headers,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def test_line_page_shows_new_results_and_pictures_without_reload(
    stack: Stack, browser: Browser, screenshots: Path
) -> None:
    line = LINES[0]
    page = log_in(browser, stack, "viewer", f"/lines/{line}")
    expect(page.locator("#live[data-live]")).to_be_attached()
    page.evaluate("window.__notReloaded = true")
    totals = page.locator('[data-part="totals"]')
    before = totals.inner_text()
    newest = page.evaluate("document.querySelector('#gallery figure')?.dataset.id ?? null")
    # The stream, not a reload, must bring the new count (the demo's gateways keep inspecting).
    page.wait_for_function(
        "before => document.querySelector('[data-part=\"totals\"]').textContent.trim() !== before.trim()",
        arg=before,
    )
    assert int(totals.inner_text().split()[0]) > int(before.split()[0])
    # ...and a new defect picture at the front of the gallery, with its anomaly box.
    page.wait_for_function(
        "before => { const f = document.querySelector('#gallery figure'); return f && f.dataset.id !== before; }",
        arg=newest,
        timeout=PICTURE_TIMEOUT_MS,
    )
    front = page.locator("#gallery figure").first
    expect(front.locator("img")).to_be_visible()
    assert page.evaluate("document.querySelector('#gallery figure img').naturalWidth") > 0
    assert page.evaluate("window.__notReloaded") is True
    assert page.locator("#gallery figure").count() <= 24
    expect(page.locator('[data-part="charts"] svg.chart')).to_have_count(2)
    page.screenshot(path=str(screenshots / "line-live.png"), full_page=True)


def test_rollout_page_follows_a_pause_made_through_the_api(
    stack: Stack, browser: Browser, screenshots: Path, rollout: str
) -> None:
    if stack.get(f"/rollouts/{rollout}")["state"] == "paused":  # another test may have paused it
        act(stack, rollout, "resume")
    page = log_in(browser, stack, "operator", f"/rollouts/{rollout}")
    expect(page.locator("#state")).to_have_text("running")
    expect(page.locator("#pause")).to_be_visible()
    expect(page.locator("#resume")).to_be_hidden()
    expect(page.locator('#gate-values tr[data-gateway="gw-2"]')).to_be_visible()
    expect(page.locator('#gate-values [data-gate="max_error_rate"]').first).to_contain_text("max 5.0%")
    page.evaluate("window.__notReloaded = true")

    act(stack, rollout, "pause")
    expect(page.locator("#state")).to_have_text("paused")
    expect(page.locator("#state")).to_have_class("badge state-paused")
    # The buttons follow the state: resume offered, pause no longer.
    expect(page.locator("#resume")).to_be_visible()
    expect(page.locator("#pause")).to_be_hidden()
    expect(page.locator('[data-part="events"]')).to_contain_text("paused by")
    assert page.evaluate("window.__notReloaded") is True
    page.screenshot(path=str(screenshots / "rollout-live.png"), full_page=True)
    page.set_viewport_size({"width": 768, "height": 1024})  # a tablet, portrait
    page.screenshot(path=str(screenshots / "rollout-live-tablet.png"), full_page=True)


def test_admin_create_form_shows_the_api_errors_beside_the_fields(
    stack: Stack, browser: Browser, screenshots: Path
) -> None:
    page = log_in(browser, stack, "admin", "/rollouts")
    form = page.locator("#create-rollout")
    expect(form).to_be_visible()
    name, version = stack.release
    page.select_option("#model_name", name)
    # Only the chosen model's versions are offered.
    offered = page.eval_on_selector_all(
        "#version optgroup:not([disabled]) option", "os => os.map(o => o.value)"
    )
    assert version in offered
    page.select_option("#version", version)
    page.select_option("select[name=slot]", "defect")  # only the slots the gateways reported are offered
    page.fill("input[name=gateways]", "gw-2")
    page.fill("input[name=waves]", "1,half")
    page.fill("input[name=max_error_rate]", "1.5")
    page.click("#create-rollout button[type=submit]")
    expect(page.locator("#error-waves")).to_contain_text("neither a count nor a percentage")
    expect(page.locator("#error-max_error_rate")).to_contain_text("less than or equal to 1")
    # The typed values are kept for fixing, not lost to an error page.
    expect(page.locator("input[name=waves]")).to_have_value("1,half")
    expect(page.locator("input[name=gateways]")).to_have_value("gw-2")
    expect(page.locator("#version")).to_have_value(version)
    page.screenshot(path=str(screenshots / "rollout-create.png"), full_page=True)
