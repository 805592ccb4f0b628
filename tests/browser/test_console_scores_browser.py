"""What the demo's galleries say about a picture, in headless Chromium: a score as a verdict beside its
threshold (never a bare number), and a damaged parcel's barcode and sort lane."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from tests.browser.stack import Stack, log_in
from tests.support.waiting import wait_for

FLAGGED_TIMEOUT_S = 240.0  # damaged parcels are one in seven, and a parcel crosses every few seconds
BARE_SCORE = re.compile(r"·\s*0\.\d+\s*$")  # how the gallery used to caption a picture
LOADED = "(id) => document.querySelector(`figure[data-id='${id}'] img`)?.naturalWidth > 0"


def _newest(stack: Stack, line: str, wanted: str, test: Any) -> dict[str, Any]:
    """The newest flagged result of ``line`` with a picture that passes ``test``, once the demo made one."""
    found: list[dict[str, Any]] = []

    def made() -> bool:
        found[:] = [
            d for d in stack.get(f"/lines/{line}/defects", limit=50) if d["has_thumbnail"] and test(d)
        ]
        return bool(found)

    wait_for(made, FLAGGED_TIMEOUT_S, f"{wanted} on {line}")
    return found[0]


def test_gallery_says_each_score_against_its_threshold_and_a_parcel_shows_its_barcode_and_lane(
    stack: Stack, browser: Browser, screenshots: Path
) -> None:
    anomaly = _newest(stack, "line-1", "an anomaly model's defect", lambda d: d["output"].get("raw_score"))
    classified = _newest(stack, "line-2", "a classifier's defect", lambda d: d["output"].get("threshold"))
    parcel = _newest(
        stack, "line-3", "a damaged parcel with a read label", lambda d: d["output"].get("barcode")
    )

    page = log_in(browser, stack, "viewer", "/lines/line-1")
    meaning = page.locator(f'figure[data-id="{anomaly["id"]}"] .score-meaning')
    expect(meaning).to_have_text(re.compile(r"^\d+\.\d+× threshold · defect"))
    title = meaning.get_attribute("title") or ""
    threshold = anomaly["output"]["threshold"]
    assert f"against the threshold {threshold:.4g}" in title, title  # the raw numbers, on hover
    caption = page.locator(f'figure[data-id="{anomaly["id"]}"] figcaption').inner_text()
    assert not BARE_SCORE.search(caption.splitlines()[0]), caption
    page.wait_for_function(LOADED, arg=anomaly["id"])
    page.screenshot(path=str(screenshots / "line-scores.png"), full_page=True)

    page.goto(f"{stack.url}/lines/line-2")
    expect(page.locator(f'figure[data-id="{classified["id"]}"] .score-meaning')).to_have_text(
        re.compile(r"^\d+(\.\d+)?% likely \(cut-off \d+(\.\d+)?%\) · defect$")
    )

    page.goto(f"{stack.url}/lines/line-3")
    figure = page.locator(f'figure[data-id="{parcel["id"]}"]')
    expect(figure.locator(".lane")).to_have_text(f"lane {parcel['label']}")
    expect(figure.locator(".barcode code")).to_have_text(parcel["output"]["barcode"])
    expect(figure.locator(".score-meaning")).to_have_text(
        re.compile(r"^damaged · damage \d\.\d+ \(cut-off \d\.\d+\)$")
    )
    page.wait_for_function(LOADED, arg=parcel["id"])  # the parcel's picture, label and all
    page.screenshot(path=str(screenshots / "line-parcels.png"), full_page=True)
