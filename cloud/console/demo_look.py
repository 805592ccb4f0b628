"""The demo's look switch on the Line page: a demo-profile control, off unless ``demo_control_url``
is set.

``factory-sim demo`` gives its API the URL of its simulator control endpoint (the cloud setting
``demo_control_url``); admins then see "Demo: change look" on the page of each line the demo
simulates, which sets the look of that line's simulated cameras through the endpoint
(``GET /lines/LINE``: its look and the looks offered; ``POST /lines/LINE/look``). A plant's real
cameras have no such switch: the control stays a demo's, and nothing else in the cloud uses it.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import Request

from cloud.console.session import User

log = logging.getLogger(__name__)

TIMEOUT_S = 5.0  # a local endpoint; longer means the demo is gone


class DemoControlError(Exception):
    """The demo's control endpoint refused or did not answer; ``status`` as the console shows it."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def control_url(request: Request) -> str | None:
    """The demo's control endpoint, when this deployment runs one."""
    url: str | None = request.app.state.settings.demo_control_url
    return url


async def _call(method: str, url: str, path: str, json: Any = None) -> Any:
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            answer = await client.request(method, f"{url}{path}", json=json)
    except httpx.HTTPError as exc:
        raise DemoControlError(502, f"the demo's control at {url} did not answer: {exc}") from None
    try:
        body = answer.json()
    except ValueError:
        body = {"detail": answer.text}
    if answer.status_code != 200:
        detail = body.get("detail") if isinstance(body, dict) else body
        raise DemoControlError(answer.status_code, f"the demo's control refused: {detail}")
    return body


async def demo_look_context(request: Request, line: str, user: User) -> dict[str, Any]:
    """``demo_look`` for the Line page: None (no control: not the demo, not an admin, or a line the
    demo does not simulate), or the line's current ``look`` and the ``looks`` offered, or an ``error``."""
    url = control_url(request)
    if url is None or not user.is_admin:
        return {"demo_look": None}
    try:
        state = await _call("GET", url, f"/lines/{quote(line, safe='')}")
    except DemoControlError as exc:
        if exc.status == 404:
            return {"demo_look": None}
        return {"demo_look": {"error": exc.detail}}
    return {"demo_look": {"look": state.get("look"), "looks": state.get("looks", [])}}


async def set_demo_look(request: Request, line: str, look: str, user: User) -> dict[str, Any]:
    """Switch ``line``'s simulated cameras to ``look``; what the control answered."""
    url = control_url(request)
    if url is None:
        raise DemoControlError(404, "this deployment has no demo control (demo_control_url is not set)")
    if not user.is_admin:
        raise DemoControlError(403, "only an admin may change a demo line's look")
    changed: dict[str, Any] = await _call("POST", url, f"/lines/{quote(line, safe='')}/look", {"look": look})
    log.info("demo control: %s set %s's look to %s", user.name, line, look)
    return changed
