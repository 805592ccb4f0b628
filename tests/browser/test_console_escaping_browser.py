"""Text a gateway sends is shown as text on every console page, in headless Chromium on the running
demo: a gateway publishes, through the demo's broker, an agent version, CPU model, barcode, frame
names, notes, event messages and details, and an OTA error full of ``<script>`` and
``<img onerror>``; each page shows them literally, and none of them runs or adds an element.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from protocol.topics import TopicSpace
from tests.browser.stack import Stack, log_in
from tests.support.hostile_gateway import ARCH, GATEWAY, IMAGE, LINE, SCRIPT, SLOT, HostileGateway

WAIT_S = 90.0  # the demo's ingest and Celery beat on a loaded machine


@pytest.fixture
def hostile(stack: Stack) -> Iterator[HostileGateway]:
    """The hostile gateway online on the demo's broker, its messages stored."""
    broker = urlsplit(stack.settings.broker_url)
    gateway = HostileGateway(
        (str(broker.hostname), int(broker.port or 1883)), TopicSpace(stack.settings.topic_root)
    )
    gateway.come_online()
    deadline = time.monotonic() + WAIT_S
    while (
        stack.get(f"/gateways/{GATEWAY}")["agent_version"] != IMAGE  # its birth is stored
        or len(stack.get(f"/gateways/{GATEWAY}/events")["items"]) < 2
        or len(stack.get("/results", line=LINE)["items"]) < 3
    ):
        assert time.monotonic() < deadline, "the demo never stored the hostile gateway's messages"
        time.sleep(0.5)
    yield gateway
    gateway.close()


def _refused_rollout(stack: Stack, gateway: HostileGateway) -> str:
    """A rollout to the hostile gateway, which refuses it with a hostile error: its reason."""
    name, version = stack.release
    body = {
        "model_name": name,
        "version": version,
        "slot": SLOT,
        "target": {"gateways": [GATEWAY]},
        "waves": "100%",
    }
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    made = httpx.post(f"{stack.url}/api/v1/rollouts", json=body, headers=headers, timeout=30)
    assert made.status_code == 201, made.text
    rollout_id: str = made.json()["id"]
    gateway.refuse_update(gateway.desired(WAIT_S))
    deadline = time.monotonic() + WAIT_S
    while IMAGE not in str(stack.get(f"/rollouts/{rollout_id}")["gateways"]):
        assert time.monotonic() < deadline, "the rollout never recorded the gateway's refusal"
        time.sleep(0.5)
    return rollout_id


# Elements the hostile text would make if a page let it be markup: its image, its script.
INJECTED = """() => document.querySelectorAll('img[src="x"]').length
    + Array.from(document.scripts).filter((s) => s.textContent.includes("__pwned")).length"""


def _shows_text_and_runs_nothing(page: Page, *texts: str) -> None:
    for text in texts:
        expect(page.locator("main")).to_contain_text(text)
    assert page.evaluate(INJECTED) == 0, f"{page.url} made elements of a gateway's text"
    assert page.evaluate("window.__pwned") is None, f"{page.url} ran a gateway's text"


def test_gateway_text_is_shown_literally_on_every_page(
    stack: Stack, browser: Browser, hostile: HostileGateway
) -> None:
    rollout_id = _refused_rollout(stack, hostile)
    page = log_in(browser, stack, "admin", "/")
    expected = {
        "/": (),  # the overview lists the line; nothing the gateway wrote may run there either
        f"/lines/{LINE}": (SCRIPT,),  # the damaged parcel's barcode in the gallery
        f"/lines/{LINE}/notes": (f"{SCRIPT} belt squeaks {IMAGE}", IMAGE),  # a note's text; a frame name
        "/gateways": (IMAGE,),  # agent version
        f"/gateways/{GATEWAY}": (
            f"{IMAGE} (session 1)",  # agent version
            f"{SCRIPT} ({ARCH})",  # CPU model and architecture
            f"download failed: {SCRIPT}",  # an OTA event
            f"shed {IMAGE}",  # another event
            f"smoke test: {IMAGE}",  # the reported OTA error
        ),
        f"/rollouts/{rollout_id}": (f"smoke test: {IMAGE}",),  # the gateway's refusal
        "/rollouts": (),
        "/alerts": (),
    }
    for path, texts in expected.items():
        page.goto(f"{stack.url}{path}")
        _shows_text_and_runs_nothing(page, *texts)
    # A live page swaps server-rendered fragments in through innerHTML: a note that arrives while
    # the Notes page is open comes in through its stream, and is text too.
    page.goto(f"{stack.url}/lines/{LINE}/notes")
    hostile.write_note(f"live {IMAGE}")
    _shows_text_and_runs_nothing(page, f"live {IMAGE}")
