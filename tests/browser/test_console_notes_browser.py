"""A line's maintenance notes in headless Chromium, on the running demo: gw-1 writes notes on line-1
beside its camera (a few a minute, by the demo's notes simulator), and this test writes one more."""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.browser.stack import Stack, log_in

NOTES_LINE, NOTES_GATEWAY = "line-1", "gw-1"
TIMEOUT_MS = 30_000
NOTE_TIMEOUT_MS = 90_000  # the agent polls its notes folder and batches results: a note takes seconds
HIGH_NOTE_TIMEOUT_MS = 180_000  # about a third of the simulator's notes are urgent, one every 5 s
URGENCY_PATTERN = re.compile(r"^(low|medium|high) urgency$")


def _write_note(stack: Stack, text: str) -> None:
    """Drop a note into gw-1's notes folder as an operator's tool would: a temporary name, then a rename."""
    folder = stack.workdir / "gateways" / NOTES_GATEWAY / "notes"
    assert folder.is_dir(), f"the demo's notes folder {folder} is missing"
    name = f"zz-browser-{uuid.uuid4().hex[:8]}"
    (folder / f".{name}.tmp").write_text(text + "\n", encoding="utf-8")
    os.replace(folder / f".{name}.tmp", folder / f"{name}.txt")


def _wait_for_a_note(stack: Stack) -> None:
    """Until the demo's first notes are in (the notes model loads after the camera's)."""
    deadline = time.monotonic() + NOTE_TIMEOUT_MS / 1000
    while not stack.get("/results", line=NOTES_LINE, task="notes", limit=1)["items"]:
        assert time.monotonic() < deadline, f"no maintenance note reached the cloud from {NOTES_GATEWAY}"
        time.sleep(0.5)


def test_notes_view_shows_words_and_urgency_takes_new_notes_live_and_filters_by_urgency(
    stack: Stack, browser: Browser, screenshots: Path
) -> None:
    _wait_for_a_note(stack)
    page = log_in(browser, stack, "viewer", "/", TIMEOUT_MS)
    # The tile of the line that has notes counts them and links to them.
    expect(page.locator(f'[data-line="{NOTES_LINE}"] [data-k="notes_hour"]')).to_have_text(
        re.compile(r"^[1-9]")
    )
    page.screenshot(path=str(screenshots / "overview-notes.png"), full_page=True)
    page.click(f'[data-line="{NOTES_LINE}"] a.tile-notes')
    expect(page).to_have_url(f"{stack.url}/lines/{NOTES_LINE}/notes")
    expect(page.locator("h1")).to_contain_text(f"Maintenance notes: {NOTES_LINE}")
    first = page.locator("#notes li.note").first
    expect(first.locator(".note-text")).not_to_be_empty()
    expect(first.locator(".badge.urgency")).to_have_text(URGENCY_PATTERN)

    page.evaluate("window.__notReloaded = true")
    words = f"Coolant pump 2 rattles, check bearing (browser check {uuid.uuid4().hex[:6]})"
    _write_note(stack, words)
    arrived = page.locator("#notes li.note", has=page.locator(".note-text", has_text=words))
    expect(arrived).to_be_visible(timeout=NOTE_TIMEOUT_MS)
    expect(arrived.locator(".badge.urgency")).to_have_text(URGENCY_PATTERN)
    assert page.evaluate("window.__notReloaded") is True, "the note came by reloading the page"
    page.screenshot(path=str(screenshots / "notes-live.png"), full_page=True)

    page.select_option("#urgency", "high")
    page.click("#note-filters button[type=submit]")
    expect(page).to_have_url(f"{stack.url}/lines/{NOTES_LINE}/notes?category=&urgency=high")
    expect(page.locator("#live")).to_have_attribute(
        "data-live", f"/console/lines/{NOTES_LINE}/notes/events?urgency=high"
    )
    urgent = page.locator("#notes li.note")
    expect(urgent.first).to_be_visible(timeout=HIGH_NOTE_TIMEOUT_MS)
    assert set(urgent.evaluate_all("notes => notes.map(n => n.dataset.urgency)")) == {"high"}
    expect(urgent.first).to_have_class("note urgent")
    expect(urgent.first.locator(".badge.urgency")).to_have_text("high urgency")
    # ...and counted: the line's figures above the list follow the notes live.
    expect(page.locator('[data-part="figures"]')).not_to_contain_text(", 0 of high urgency")
    # Highlighted, not only labelled: the bar beside an urgent note is the console's alarm red.
    bar = urgent.first.evaluate("n => getComputedStyle(n).borderLeftColor")
    assert bar == "rgb(198, 40, 40)", bar
    page.screenshot(path=str(screenshots / "notes-urgent.png"), full_page=True)

    # The line page links to its notes too.
    page.goto(f"{stack.url}/lines/{NOTES_LINE}")
    page.click('[data-part="notes"] a')
    expect(page).to_have_url(f"{stack.url}/lines/{NOTES_LINE}/notes")
