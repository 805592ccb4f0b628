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
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.browser.stack import Stack, running_demo
from tests.conftest import MOSQUITTO, _fresh_postgres_db, require_tcp

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
