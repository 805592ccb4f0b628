"""Wide tables on a portrait tablet (768x1024): every column and button can be reached by scrolling
the table's own box, which says so; on the 1366x768 office screen the same tables simply fit."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.browser.stack import Stack, open_offline_alert

TABLET = {"width": 768, "height": 1024}
OFFICE = {"width": 1366, "height": 768}

# Scroll the box holding the table to its right end; then where its last cell is and how wide the
# page and the box are.
REACH = """(selector) => {
    const cell = document.querySelector(selector);
    const box = cell.closest(".scroll");
    box.scrollLeft = box.scrollWidth;
    const r = cell.getBoundingClientRect();
    return {right: r.right, left: r.left, page: document.documentElement.scrollWidth,
            view: window.innerWidth, boxScrolls: box.scrollWidth > box.clientWidth};
}"""


def _page(browser: Browser, stack: Stack, viewport: dict[str, int]) -> Page:
    page = browser.new_page(viewport=viewport)  # type: ignore[arg-type]
    page.set_default_timeout(15_000)
    page.goto(f"{stack.url}/login")
    page.fill("input[name=username]", stack.users["operator"])
    page.fill("input[name=password]", stack.password)
    page.click("button[type=submit]")
    expect(page.locator("#who")).to_contain_text(stack.users["operator"])
    return page


def _reachable(page: Page, selector: str) -> dict[str, float | bool]:
    seen: dict[str, float | bool] = page.evaluate(REACH, selector)
    assert seen["page"] <= seen["view"], seen  # the page itself never scrolls sideways
    assert seen["left"] >= 0, (selector, seen)
    assert seen["right"] <= seen["view"], (selector, seen)
    return seen


def test_wide_tables_scroll_in_their_box_on_a_tablet_and_fit_on_an_office_screen(
    stack: Stack, rollout: str, browser: Browser, screenshots: Path
) -> None:
    open_offline_alert(stack)
    tablet = _page(browser, stack, TABLET)
    tablet.goto(f"{stack.url}/gateways")
    assert _reachable(tablet, "#gateways tr:first-child th:last-child")["boxScrolls"] is True
    expect(tablet.locator(".scroll-hint")).to_be_visible()
    tablet.screenshot(path=str(screenshots / "gateways-tablet.png"), full_page=True)
    tablet.goto(f"{stack.url}/alerts?show=all")
    ack = tablet.locator("#alerts button", has_text="Acknowledge").first
    expect(ack).to_be_attached()
    _reachable(tablet, "#alerts td.action button")
    tablet.goto(f"{stack.url}/rollouts/{rollout}")
    _reachable(tablet, "#gate-values tr:first-child th:last-child")
    tablet.close()

    office = _page(browser, stack, OFFICE)
    office.goto(f"{stack.url}/gateways")
    assert _reachable(office, "#gateways tr:first-child th:last-child")["boxScrolls"] is False
    expect(office.locator(".scroll-hint")).to_be_hidden()
    office.close()
