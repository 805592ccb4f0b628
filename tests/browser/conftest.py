"""Fixtures of the browser tests: the running demo and a headless Debian Chromium via Playwright.

Contract for every browser test module:

- ``stack`` (package-scoped :class:`tests.browser.stack.Stack`): ONE ``factory-sim demo`` shared
  by all browser tests of the run (starting it takes tens of seconds), stopped after the last
  of them so it does not load the machine while the rest of the suite runs. Its lines are
  ``tests.browser.stack.LINES`` (line-1..3, gateways gw-1..3); log in as ``stack.users[role]``
  (role: viewer, operator, admin) with ``stack.password``; ``stack.api_token(user)`` gives an
  API token; ``stack.get(path)`` reads the API as admin; ``stack.release`` is the (model,
  version) pushed for rollouts; ``tests.browser.stack.log_in(browser, stack, role, path)`` opens
  ``path`` logged in as that role. Tests share its state: create what you need, and do not assume
  a test ran before yours or that no other rollout or alert rule exists.
- ``rollout`` (package-scoped): the id of a running rollout of ``stack.release`` to gw-2 whose
  first wave has started; tests may pause it (and should not abort it).
- ``browser``: Debian's Chromium, headless, per test.
- ``screenshots``: the folder of page screenshots (``test-artifacts/screenshots``).
- ``upload_capture``: registers a dataset of given frames as gw-1 (line-1, slot defect) would
  upload it, under a capture id of its own; returns that id.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, sync_playwright

from protocol.captures import CaptureFile
from tests.browser.stack import Stack, running_demo
from tests.conftest import MOSQUITTO, _fresh_postgres_db, require_tcp
from tests.support.captures import T0, manifest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="package")
def demo_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo's own database, picked by ``--dburl`` like every other test's."""
    choice: str = request.config.getoption("--dburl")
    if choice == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('demo-db') / 'cloud.db'}"
    elif choice == "postgresql":
        yield from _fresh_postgres_db()
    else:
        yield choice


@pytest.fixture(scope="package")
def stack(demo_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """``factory-sim demo`` on the machine's Mosquitto and its own database, once lines are live."""
    require_tcp(*MOSQUITTO, "Mosquitto")
    with running_demo(demo_db_url, MOSQUITTO, tmp_path_factory.mktemp("demo")) as running:
        yield running


@pytest.fixture(scope="package")
def rollout(stack: Stack) -> str:
    """A running rollout of the pushed release to gw-2 (the CNN line), its first wave started."""
    name, version = stack.release
    body = {"model_name": name, "version": version, "slot": "defect", "target": {"gateways": ["gw-2"]},
            "waves": "100%", "bake_s": 600}  # fmt: skip
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    answer = httpx.post(f"{stack.url}/api/v1/rollouts", json=body, headers=headers, timeout=30)
    assert answer.status_code == 201, answer.text
    rollout_id: str = answer.json()["id"]
    # The demo's Celery beat starts the first wave on its next tick (every few seconds).
    deadline = time.monotonic() + 60
    while not any(e["kind"] == "wave_started" for e in stack.get(f"/rollouts/{rollout_id}")["events"]):
        assert time.monotonic() < deadline, "the demo's worker never started the rollout's first wave"
        time.sleep(0.5)
    return rollout_id


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (never a downloaded browser build)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; install Debian's chromium package", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def screenshots() -> Path:
    """Where each page's screenshot goes (gitignored test artifacts)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


UploadCapture = Callable[[Sequence[np.ndarray], str | None], str]


@pytest.fixture
def upload_capture(stack: Stack) -> UploadCapture:
    """Register ``images`` as a complete capture of gw-1 (its token, its upload calls) with the
    capture label given (None: label later); the capture's id, fresh for each call."""

    def upload(images: Sequence[np.ndarray], label: str | None) -> str:
        gateway = "gw-1"
        token = (stack.workdir / "gateways" / gateway / "api-token").read_text().strip()
        capture_id = f"cap-{uuid.uuid4().hex[:16]}"
        files = []
        with httpx.Client(base_url=f"{stack.url}/api/v1", headers={"Authorization": f"Bearer {token}"},
                          timeout=30) as api:  # fmt: skip
            for n, image in enumerate(images):
                ok, encoded = cv2.imencode(".png", image)
                assert ok
                data = encoded.tobytes()
                sha = hashlib.sha256(data).hexdigest()
                api.put(f"/captures/files/{sha}", params={"size": len(data)}, content=data).raise_for_status()
                files.append(CaptureFile(name=f"{n + 1:06d}.png", sha256=sha, size_bytes=len(data),
                                         captured_at=T0 + timedelta(seconds=n), source="cam1",
                                         frame=f"frame-{n}"))  # fmt: skip
            body = manifest(capture_id, gateway, files, line="line-1", slot="defect", label=label)
            api.put(f"/captures/{capture_id}/manifest", json=body.model_dump(mode="json")).raise_for_status()
        return capture_id

    return upload
