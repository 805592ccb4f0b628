"""Labelling a dataset's frames on the Dataset page in headless Chromium, on the running demo: an
operator taps three frames, presses g, and sees them labelled good without a reload; the audit log
says who labelled them."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Browser, expect

from tests.browser.stack import Stack, log_in
from tests.support.captures import manifest, png_files

GATEWAY = "gw-1"  # the demo's gateway of line-1; its token is in its folder, as the demo minted it


def _dataset(stack: Stack, frames: int) -> str:
    """A dataset of ``frames`` frames of gw-1, uploaded and registered as the gateway would."""
    token = (stack.workdir / "gateways" / GATEWAY / "api-token").read_text().strip()
    capture_id = f"cap-{uuid.uuid4().hex[:16]}"  # a capture of this test's own: no other test's state
    files = png_files(frames)
    with httpx.Client(base_url=f"{stack.url}/api/v1", headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as api:  # fmt: skip
        for _f, data in files:
            sha = hashlib.sha256(data).hexdigest()
            api.put(f"/captures/files/{sha}", params={"size": len(data)}, content=data).raise_for_status()
        body = manifest(capture_id, GATEWAY, [f for f, _ in files], line="line-1", label=None)
        api.put(f"/captures/{capture_id}/manifest", json=body.model_dump(mode="json")).raise_for_status()
    return capture_id


def test_operator_selects_three_frames_and_presses_g(
    stack: Stack, browser: Browser, screenshots: Path
) -> None:
    capture_id = _dataset(stack, 5)
    page = log_in(browser, stack, "operator", f"/datasets/{capture_id}")
    page.evaluate("window.__notReloaded = true")
    expect(page.locator('#label-counts [data-k="unlabelled"]')).to_have_text("5")
    chosen = ["000001.png", "000002.png", "000004.png"]
    for name in chosen:
        page.locator(f'#frames figure[data-file="{name}"]').click()
    expect(page.locator("#selected-count")).to_have_text("3")
    page.keyboard.press("g")
    for name in chosen:
        expect(page.locator(f'#frames figure[data-file="{name}"] .frame-label')).to_have_text("good")
    expect(page.locator('#frames figure[data-file="000003.png"] .frame-label')).to_have_text("-")
    expect(page.locator('#label-counts [data-k="labelled"]')).to_have_text("3")
    expect(page.locator('#label-counts [data-k="unlabelled"]')).to_have_text("2")
    expect(page.locator("#selected-count")).to_have_text("0")
    assert page.evaluate("window.__notReloaded") is True  # the tiles changed in place
    page.screenshot(path=str(screenshots / "dataset-labels.png"), full_page=True)

    stored = {f["name"]: f["label"] for f in stack.get(f"/datasets/{capture_id}")["files"]}
    assert stored == {"000001.png": "good", "000002.png": "good", "000003.png": None,
                      "000004.png": "good", "000005.png": None}  # fmt: skip
    operator = stack.users["operator"]
    entries = [
        e for e in stack.get("/audit", action="dataset.label", limit=1000) if e["target"] == capture_id
    ]
    assert [(e["actor"], sorted(e["details"]["files"])) for e in entries] == [(f"user:{operator}", chosen)]
