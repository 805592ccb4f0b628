"""Teaching a new normal in headless Chromium, on the running demo: an operator's "Teach new normal"
on a dataset that cannot teach lands on the failed run saying why; a run queued on a dataset of good
and labelled defective frames is fit by the demo's own Celery worker (the real trainer, with the
small settings the training tests use), and its page reloads itself until the candidate's figures,
files and lineage show, awaiting an engineer's signature since the demo's cloud holds no key."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, expect

from simulators.camera_line import CameraLine
from tests.browser.conftest import UploadCapture
from tests.browser.stack import Stack, log_in
from tests.support.captures import camera_frame
from tests.support.teach import FAST, LINE

GOOD, DEFECTS = 20, 4
FIT_TIMEOUT_MS = 300_000  # the worker imports torch and fits on a shared machine: a bound, not a speed


def _operator_api(stack: Stack) -> httpx.Client:
    token = stack.api_token(stack.users["operator"])
    return httpx.Client(
        base_url=f"{stack.url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def _good_and_defective(stack: Stack, upload_capture: UploadCapture) -> tuple[str, dict[str, str]]:
    """A capture of ``GOOD`` good frames of the simulated line then ``DEFECTS`` defective ones,
    each defect labelled with its kind by the operator; the capture's id and those labels."""
    good_line, bad_line = (
        CameraLine(replace(LINE, defect_rate=0.0)),
        CameraLine(replace(LINE, defect_rate=1.0)),
    )
    bad = [bad_line.frame(GOOD + i) for i in range(DEFECTS)]
    images = [good_line.frame(i).image for i in range(GOOD)] + [f.image for f in bad]
    capture_id = upload_capture(images, "good")
    labels = {f"{GOOD + i + 1:06d}.png": f.truth.label for i, f in enumerate(bad)}
    with _operator_api(stack) as api:
        api.put(f"/datasets/{capture_id}/labels", json={"labels": labels}).raise_for_status()
    return capture_id, labels


def test_teaching_a_dataset_without_good_frames_shows_the_failed_run_and_why(
    stack: Stack, browser: Browser, screenshots: Path, upload_capture: UploadCapture
) -> None:
    capture_id = upload_capture([camera_frame(n) for n in range(3)], None)  # unlabelled, no capture label
    page = log_in(browser, stack, "operator", f"/datasets/{capture_id}")
    page.click("#teach")
    expect(page).to_have_url(re.compile(rf"^{re.escape(stack.url)}/training/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[-1])
    run: dict[str, Any] = stack.get(f"/training-runs/{run_id}")
    assert (run["dataset_id"], run["status"]) == (capture_id, "failed")
    expect(page.locator("#run-status")).to_have_text("failed")
    expect(page.locator("#run-error")).to_have_text(run["error"])
    expect(page.locator("#run-error")).to_contain_text("good")  # says what the dataset lacks
    expect(page.locator("#run")).to_have_attribute("data-active", "false")
    lineage = page.locator("#lineage")
    expect(lineage.locator(f'a[href="/datasets/{capture_id}"]')).to_have_text(capture_id)
    expect(lineage).to_contain_text("line-1, gw-1, slot defect, 3 frames (unlabelled 3)")
    expect(lineage).to_contain_text(f"by {stack.users['operator']}")
    expect(page.locator("#figures")).to_have_count(0)
    page.screenshot(path=str(screenshots / "training-run-failed.png"), full_page=True)


def test_a_queued_run_reloads_its_page_until_the_candidates_figures_and_lineage_show(
    stack: Stack, browser: Browser, screenshots: Path, upload_capture: UploadCapture
) -> None:
    capture_id, labels = _good_and_defective(stack, upload_capture)
    with _operator_api(stack) as api:
        answer = api.post("/training-runs", json={"dataset_id": capture_id, **FAST})
    assert answer.status_code == 201, answer.text
    run_id = answer.json()["id"]

    page = log_in(browser, stack, "operator", f"/training/{run_id}")
    expect(page.locator("#run")).to_have_attribute("data-active", "true")  # queued or running
    expect(page.locator("main")).to_contain_text("The page reloads itself until the run ends.")
    page.screenshot(path=str(screenshots / "training-run-active.png"), full_page=True)

    # teach.js reloads the page while the demo's worker fits; no reload here.
    expect(page.locator("#run-status")).to_have_text("succeeded, awaiting signature", timeout=FIT_TIMEOUT_MS)
    run: dict[str, Any] = stack.get(f"/training-runs/{run_id}")
    figures = run["figures"]
    expect(page.locator("#run")).to_have_attribute("data-active", "false")
    shown = page.locator("#figures")
    expect(shown).to_contain_text(
        f"{figures['threshold']:.4g} at 1.0% false rejects on {figures['threshold_frames']} held-out good frames"
    )
    kinds = sorted(set(labels.values()))
    for kind in kinds:
        expect(shown).to_contain_text(f"test/{kind} {sum(k == kind for k in labels.values())}")
    expect(shown).to_contain_text(f"train/good {GOOD - GOOD // 5}")  # every fifth good frame held out
    expect(shown).to_contain_text(f"test/good {GOOD // 5}")
    for name in ("image_auroc", "f1"):
        value = figures["held_out"][name]
        assert 0.0 <= value <= 1.0
        term = shown.locator("dt", has_text=name.replace("_", " "))
        expect(term.locator("xpath=following-sibling::dd[1]")).to_have_text(f"{value:.3f}")

    lineage = page.locator("#lineage")
    expect(lineage.locator(f'a[href="/datasets/{capture_id}"]')).to_have_text(capture_id)
    expect(lineage).to_contain_text(f"line-1, gw-1, slot defect, {GOOD + DEFECTS} frames")
    expect(lineage).to_contain_text(f"by {stack.users['operator']}")
    expect(lineage).to_contain_text(f"coreset={FAST['coreset']}")
    expect(lineage).to_contain_text("factory-edge ")  # the code that trained
    model = f"{run['model_name']} {run['model_version']}"
    expect(page.locator("#run-model")).to_have_text(f"{model} (not registered)")
    expect(page.locator("#awaiting pre")).to_contain_text(
        f"factoryctl runs download {run_id} --out run-{run_id}"
    )
    expect(page.locator("#files")).to_contain_text("MODEL_CARD.md")
    expect(page.locator("#log-tail")).not_to_be_empty()
    wide = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(wide), "the trainer's output widens the run view past the screen"
    page.screenshot(path=str(screenshots / "training-run-succeeded.png"), full_page=True)

    page.goto(f"{stack.url}/training?dataset={capture_id}")
    row = page.locator(f'#runs tr[data-run="{run_id}"]')
    expect(row).to_contain_text("awaiting signature")
    expect(row).to_contain_text(model)
    expect(page.locator("#runs tr[data-run]")).to_have_count(1)
    page.screenshot(path=str(screenshots / "training-runs.png"), full_page=True)
