"""Dispositions and CSV export on the Line page in headless Chromium, on the running demo: an operator
marks a flagged picture a false reject and sees it without a reload, a viewer sees it but no
buttons, and the Export CSV button downloads the page's range."""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.browser.stack import LINES, Stack, log_in

PICTURE_WAIT_S = 90  # flagged pictures come as the demo's camera lines produce defects
NOTE = "glare on the rim, part is fine"


def _flagged_line(stack: Stack) -> str:
    """A camera line of the demo with a flagged result in its gallery."""
    deadline = time.monotonic() + PICTURE_WAIT_S
    while True:
        for line in LINES[:2]:
            if stack.get(f"/lines/{line}/defects", limit=1):
                return line
        assert time.monotonic() < deadline, f"no flagged result on {LINES[:2]} within {PICTURE_WAIT_S} s"
        time.sleep(1)


def test_operator_marks_a_false_reject_viewer_sees_it_without_buttons(
    stack: Stack, browser: Browser, screenshots: Path
) -> None:
    line = _flagged_line(stack)
    page = log_in(browser, stack, "operator", f"/lines/{line}")
    page.evaluate("window.__notReloaded = true")
    result_id = page.locator("#gallery figure").first.get_attribute("data-id")
    assert result_id
    tile = page.locator(f'#gallery figure[data-id="{result_id}"]')
    expect(tile.locator(".dispo-now")).to_have_text("not reviewed")
    tile.locator("input[name=note]").fill(NOTE)
    tile.locator("button", has_text="False reject").click()
    operator = stack.users["operator"]
    expect(tile.locator(".dispo-now")).to_contain_text(f"False reject · {operator}")
    expect(tile.locator(".dispo-now")).to_contain_text(NOTE)
    expect(tile.locator('button[value="false_reject"]')).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("window.__notReloaded") is True  # the tile changed in place
    stored = stack.get(f"/results/{result_id}/disposition")
    assert (stored["disposition"], stored["actor"], stored["note"]) == (
        "false_reject", f"user:{operator}", NOTE,
    )  # fmt: skip
    # The stream brings the rate it makes beside the defect rate.
    expect(page.locator('[data-part="totals"]')).to_contain_text(
        re.compile(r"false-reject rate [\d.]+% of \d+ reviewed")
    )
    page.screenshot(path=str(screenshots / "line-dispositions.png"), full_page=True)

    viewer = log_in(browser, stack, "viewer", f"/lines/{line}")
    expect(viewer.locator(f'#gallery figure[data-id="{result_id}"] .dispo-now')).to_contain_text(
        f"False reject · {operator}"
    )
    expect(viewer.locator("#gallery .dispo-form")).to_have_count(0)
    expect(viewer.locator("#gallery button")).to_have_count(0)
    refused = viewer.evaluate(
        """async ([line, id]) => {
            const body = new URLSearchParams({disposition: "confirmed_defect"});
            const answer = await fetch(`/lines/${line}/dispositions/${id}`,
                {method: "POST", body, headers: {"X-Console-Fragment": "disposition"}});
            return [answer.status, await answer.text()];
        }""",
        [line, result_id],
    )
    assert refused[0] == 403  # not offered, and refused by the API when sent anyway
    assert "needs the operator role" in refused[1]
    assert stack.get(f"/results/{result_id}/disposition")["disposition"] == "false_reject"


def test_export_csv_downloads_the_pages_range(stack: Stack, browser: Browser) -> None:
    line = _flagged_line(stack)
    page = log_in(browser, stack, "viewer", f"/lines/{line}")  # the default range: the last hour
    with page.expect_download() as started:
        page.click("#export-csv")
    download = started.value
    assert re.fullmatch(
        rf"results-{line}-\d{{8}}T\d{{6}}Z-\d{{8}}T\d{{6}}Z\.csv", download.suggested_filename
    )
    with open(download.path(), encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows, "the demo's line produced no result in the last hour"
    assert {r["line"] for r in rows} == {line}
    assert [r["captured_at"] for r in rows] == sorted(r["captured_at"] for r in rows)
    assert all(r["captured_at"].endswith("Z") for r in rows)
