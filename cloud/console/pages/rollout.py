"""One rollout's page, its stream, and the operators' pause / resume / abort.

What it shows and how its stream finds changes: :mod:`cloud.console.rollout_view`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from cloud.console import rollout_view
from cloud.console.api import ApiClient
from cloud.console.deps import VIEWS, CurrentUser, FormUser
from cloud.console.respond import forward, render_page, to_login
from cloud.console.session import User, form
from cloud.console.stream import stream_response

router = APIRouter()


@router.get("/rollouts/{rollout_id}")
async def rollout(request: Request, rollout_id: str) -> Response:
    async def build(api: ApiClient, _u: User) -> dict[str, Any]:
        ctx = await rollout_view.load(api, rollout_id)
        return {**ctx, "ctx": ctx}

    return await render_page(request, "rollout.html", build)


@router.get("/console/rollouts/{rollout_id}/events")
async def rollout_events(
    request: Request, user: CurrentUser, rollout_id: str, limit: int | None = None
) -> Response:
    """Server-sent ``rollout`` events: state and the changed waves, gates, gateways and log."""
    feed = rollout_view.RolloutFeed(rollout_id, VIEWS.get_template("rollout_parts.html"))
    return stream_response(request, user, feed, "rollout", limit)


@router.post("/rollouts/{rollout_id}/{action}")
async def rollout_action(request: Request, user: FormUser, rollout_id: str, action: str) -> Response:
    if user is None:
        return to_login()
    reason = (await form(request)).get("reason", "")
    page = f"/rollouts/{quote(rollout_id, safe='')}"
    return await forward(request, user, "POST", f"{page}/{quote(action, safe='')}", page, {"reason": reason})
