"""The browser tests' stack is the demo itself: ``factory-sim demo`` on the real Mosquitto.

Started by :func:`tests.support.demo_stack.running_demo` (what it runs and how it is kept apart
from parallel runs is described there), plus one thing the rollout pages need: a newer
``defect-cnn``, signed with the demo's key and pushed, to roll out.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from cloud.alerts.rules import evaluate_all
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker
from cloud.factoryctl.push import push, sign
from protocol.manifest import load_manifest
from protocol.topics import Channel, TopicSpace
from simulators.fleet import bundled_manifest
from tests.support import demo_stack
from tests.support.messages import ingest, state

LINES = demo_stack.LINES  # the demo's three lines: line-1, line-2, line-3
PASSWORD = demo_stack.PASSWORD
ROLES = demo_stack.ROLES
RELEASE_VERSION = "1.1.0"  # a newer defect-cnn, signed with the demo's key: the rollouts' subject


@dataclass(frozen=True)
class Stack:
    """A running demo.

    ``url``: console and API base URL. ``users``: role -> user name, as the banner printed them
    (``viewer``, ``operator``, ``admin``), all with ``password``. ``settings``: where its
    database, broker and topics are (for tests that read the database or evaluate alerts).
    ``release``: (model, version) of the signed model pushed for rollouts.
    """

    url: str
    settings: CloudSettings
    users: dict[str, str]
    password: str
    admin_token: str
    workdir: Path
    release: tuple[str, str]

    def api_token(self, user: str) -> str:
        """A fresh API token of ``user`` (as factoryctl would get one)."""
        body = {"username": user, "password": self.password}
        answer = httpx.post(f"{self.url}/api/v1/auth/login", json=body, timeout=30)
        answer.raise_for_status()
        token: str = answer.json()["token"]
        return token

    def get(self, path: str, **params: Any) -> Any:
        """GET ``/api/v1{path}`` as the demo's admin and return the JSON body."""
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        answer = httpx.get(f"{self.url}/api/v1{path}", params=params, headers=headers, timeout=30)
        answer.raise_for_status()
        return answer.json()


def log_in(browser: Browser, stack: Stack, role: str, path: str, timeout_ms: int = 30_000) -> Page:
    """A new page of ``browser`` at ``path`` of the demo, logged in as its ``role`` user on the way."""
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.set_default_timeout(timeout_ms)
    page.goto(f"{stack.url}{path}")
    page.fill("input[name=username]", stack.users[role])
    page.fill("input[name=password]", stack.password)
    page.click("button[type=submit]")
    expect(page.locator("#who")).to_contain_text(stack.users[role])
    expect(page).to_have_url(f"{stack.url}{path}")
    return page


def push_release(url: str, token: str, key: Path, folder: Path) -> tuple[str, str]:
    """A newer defect-cnn signed with the demo's key, pushed as docs/ota.md tells an engineer to."""
    source = bundled_manifest("defect-cnn")
    folder.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(source).model_copy(update={"version": RELEASE_VERSION})
    artifact = folder / manifest.artifact
    shutil.copyfile(source.parent / manifest.artifact, artifact)
    for name in [*manifest.files, *([manifest.golden.input] if manifest.golden else [])]:
        shutil.copyfile(source.parent / name, folder / name)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        push(client, artifact, manifest, sign(manifest, key), card=f"# {manifest.name}\n\nDemo release.\n")
    return manifest.name, manifest.version


@contextmanager
def running_demo(db_url: str, broker: tuple[str, int], workdir: Path) -> Iterator[Stack]:
    """Run ``factory-sim demo`` until the context ends; yield once its lines are live and the
    release for rollouts is pushed."""
    with demo_stack.running_demo(db_url, broker, workdir) as demo:
        release = push_release(demo.url, demo.admin_token, demo.signing_key, workdir / "release")
        yield Stack(
            demo.url, demo.settings, demo.users, demo.password, demo.admin_token, demo.workdir, release
        )


def open_offline_alert(stack: Stack) -> str:
    """An alert that must open and stay open: a gateway of this test's own on line-3 that has gone,
    under a rule of 0 s (silent since its death was stored); its id. The demo's gw-3 keeps
    talking, so an alert on it may close again at the next evaluation."""
    gateway = f"gw-gone-{uuid.uuid4().hex[:8]}"
    born = datetime.now(UTC) - timedelta(minutes=5)
    topics = TopicSpace(stack.settings.topic_root)
    for online in (True, False):
        message = state(gateway, online, 1, at=born, line="line-3")
        ingest(stack.settings.db_url, topics, gateway, Channel.STATE, message)
    rule = {"line": "line-3", "kind": "gateway_offline", "threshold": 0}
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    answer = httpx.post(f"{stack.url}/api/v1/alert-rules", json=rule, headers=headers, timeout=30)
    assert answer.status_code == 201, answer.text
    engine = make_engine(stack.settings.db_url)
    try:
        evaluate_all(make_sessionmaker(engine))  # as the demo's beat does every 30 s, now
    finally:
        engine.dispose()
    return gateway
