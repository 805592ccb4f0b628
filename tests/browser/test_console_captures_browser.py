"""Captures in headless Chromium, on the running demo: an operator asks line-1 for frames of good
parts with the Datasets page's form, the line's real gateway captures and uploads them, and the
dataset opens as a gallery; a dataset bigger than a page is paged through."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from cloud.console.pages.datasets import FRAMES_PER_PAGE
from tests.browser.conftest import UploadCapture
from tests.browser.stack import Stack, log_in
from tests.support.captures import camera_frame
from tests.support.waiting import wait_for

FRAMES = 6  # at the demo camera's 2 fps, a few seconds of line-1
UPLOAD_TIMEOUT_S = 90.0  # the order reaches gw-1 over MQTT, it records, then uploads every frame
LOADED = "() => [...document.querySelectorAll('#frames img')].every(i => i.complete && i.naturalWidth > 0)"


def _capture_of(stack: Stack, note: str) -> dict[str, Any] | None:
    """gw-1's capture started with ``note``, as the API lists it."""
    listed = stack.get("/captures", gateway="gw-1", limit=50)["items"]
    found = [c for c in listed if c.get("note") == note]
    return found[0] if found else None


def test_an_operator_captures_good_frames_on_line_1_and_opens_them_as_a_dataset(
    stack: Stack, browser: Browser, screenshots: Path
) -> None:
    note = f"new belt fitted ({uuid.uuid4().hex[:8]})"  # tells this test's capture from any other
    page = log_in(browser, stack, "operator", "/datasets")
    form = page.locator("#start-capture")
    form.locator("select[name=target]").select_option("line:line-1")
    form.locator("select[name=slot]").select_option("defect")
    form.locator("input[name=frames]").fill(str(FRAMES))
    form.locator("input[name=label]").fill("good")
    form.locator("input[name=note]").fill(note)
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(f"{stack.url}/datasets")

    started = _capture_of(stack, note)
    assert started is not None, "the form's capture is not in the API"
    capture_id = started["id"]
    row = page.locator(f'#captures tr[data-capture="{capture_id}"]')
    expect(row).to_contain_text("line-1")
    expect(row).to_contain_text(f"/ {FRAMES}")
    expect(row).to_contain_text(stack.users["operator"])

    wait_for(lambda: (_capture_of(stack, note) or {}).get("status") == "complete", UPLOAD_TIMEOUT_S,
             f"gw-1 uploading capture {capture_id}")  # fmt: skip
    page.reload()
    row = page.locator(f'#captures tr[data-capture="{capture_id}"]')
    expect(row.locator(".badge")).to_have_text("complete")
    expect(row).to_contain_text(f"{FRAMES} / {FRAMES}")
    expect(row.locator("td").nth(6)).to_have_text("good")
    page.screenshot(path=str(screenshots / "datasets-captured.png"), full_page=True)

    row.locator(f'a[href="/datasets/{capture_id}"]').click()
    expect(page.locator("h1")).to_have_text(f"Dataset {capture_id}")
    facts = page.locator("#facts")
    expect(facts).to_contain_text("line-1, gw-1, defect")
    expect(facts).to_contain_text(f"{FRAMES} of {FRAMES} asked")
    expect(facts).to_contain_text(f"good: {note}")
    expect(page.locator("#frames figure")).to_have_count(FRAMES)
    expect(page.locator("#pages")).to_have_count(0)  # one page
    page.wait_for_function(LOADED)  # the frames gw-1 uploaded, served back as pictures
    page.screenshot(path=str(screenshots / "dataset-captured.png"), full_page=True)


def test_a_dataset_larger_than_a_page_is_paged_through(
    stack: Stack, browser: Browser, screenshots: Path, upload_capture: UploadCapture
) -> None:
    total = FRAMES_PER_PAGE + 2
    capture_id = upload_capture([camera_frame(n) for n in range(total)], "good")
    page = log_in(browser, stack, "viewer", f"/datasets/{capture_id}")
    expect(page.locator("#facts")).to_contain_text(f"{total} of {total} asked")
    frames = page.locator("#frames figure")
    expect(frames).to_have_count(FRAMES_PER_PAGE)
    expect(frames.first).to_have_attribute("data-file", "000001.png")
    expect(frames.last).to_have_attribute("data-file", f"{FRAMES_PER_PAGE:06d}.png")
    expect(page.locator("#pages span")).to_have_text("page 1 of 2")
    expect(page.locator("#pages a[rel=prev]")).to_have_count(0)
    expect(page.locator("#label-bar")).to_have_count(0)  # a viewer does not label
    page.wait_for_function(LOADED)
    page.screenshot(path=str(screenshots / "dataset-page-1.png"), full_page=True)

    page.locator("#pages a[rel=next]").click()
    expect(page).to_have_url(f"{stack.url}/datasets/{capture_id}?page=2")
    expect(page.locator("#pages span")).to_have_text("page 2 of 2")
    names = [f"{n:06d}.png" for n in range(FRAMES_PER_PAGE + 1, total + 1)]
    expect(frames).to_have_count(len(names))
    assert [f.get_attribute("data-file") for f in frames.all()] == names
    expect(page.locator("#pages a[rel=next]")).to_have_count(0)
    page.wait_for_function(LOADED)
    page.screenshot(path=str(screenshots / "dataset-page-2.png"), full_page=True)

    page.locator("#pages a[rel=prev]").click()
    expect(page.locator("#pages span")).to_have_text("page 1 of 2")
    expect(frames.first).to_have_attribute("data-file", "000001.png")
