"""The demo's look switch in headless Chromium, on the running demo: an admin changes the parcel
line's look from its Line page, and the line's camera serves its frames in the new look.

line-3 is used because no other browser test judges its pictures by how they look; whatever
happens, the test puts its look back to normal.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import cv2
import numpy as np
from playwright.sync_api import Browser, expect

from simulators.demo_control import STATE_FILE
from simulators.json_http import call_json
from tests.browser.stack import Stack, log_in
from tests.support.waiting import wait_for

LINE = "line-3"
EDGE_ROWS = 20  # the strips along the belt's edges, which parcels never cover
# Green minus red over those strips: within +-0.1 under the normal lamp (grey rails), 3.7 or more
# under the unseen look's flickering lamp (measured over 200 frames of two seeds, JPEG included).
UNSEEN_TINT = 2.0


def _edge_tint(camera: str) -> tuple[int, float]:
    """The index of the camera's latest frame, and its green minus red along the belt's edges."""
    with urllib.request.urlopen(f"{camera}/frame.jpg", timeout=10) as answer:  # noqa: S310 - the demo's camera
        index = int(answer.headers["X-Frame-Index"])
        image = cv2.imdecode(np.frombuffer(answer.read(), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, f"{camera}/frame.jpg is not a JPEG"
    edges = np.concatenate([image[:EDGE_ROWS], image[-EDGE_ROWS:]]).astype(np.float32)
    return index, float(edges[..., 1].mean() - edges[..., 2].mean())


def test_an_admin_changes_a_lines_look_and_its_camera_follows(
    stack: Stack, browser: Browser, screenshots: Path
) -> None:
    control = json.loads((stack.workdir / STATE_FILE).read_text())["url"]
    status, line = call_json("GET", f"{control}/lines/{LINE}")
    assert status == 200, line
    camera = line["cameras"][0]["camera"]
    page = log_in(browser, stack, "admin", f"/lines/{LINE}")
    try:
        expect(page.locator("#demo-look")).to_contain_text("Demo: change look")
        expect(page.locator("#demo-look-now")).to_have_text("normal")
        assert _edge_tint(camera)[1] < UNSEEN_TINT
        page.select_option("#demo-look-choice", "unseen")
        page.click("#demo-look-change")
        expect(page.locator("#demo-look-now")).to_have_text("unseen")
        look = call_json("GET", f"{camera}/look")[1]
        assert look["look"] == "unseen"
        first = look["from_index"]
        wait_for(lambda: _edge_tint(camera)[0] >= first, 30, "a frame in the new look")
        assert _edge_tint(camera)[1] > UNSEEN_TINT
        truth = call_json("GET", f"{camera}/truth")[1]
        assert {f["look"] for f in truth["frames"] if f["index"] >= first} == {"unseen"}
        page.screenshot(path=str(screenshots / "line-demo-look.png"), full_page=True)
    finally:
        call_json("POST", f"{control}/lines/{LINE}/look", {"look": "normal"})
    page.reload()
    expect(page.locator("#demo-look-now")).to_have_text("normal")
