"""The Gateways list and its stream of changed rows (what: :mod:`cloud.console.gateway_view`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from cloud.console.deps import VIEWS, CurrentUser
from cloud.console.gateway_view import GatewaysFeed, gateways_context
from cloud.console.respond import render_page
from cloud.console.stream import stream_response

router = APIRouter()


@router.get("/gateways")
async def gateways(request: Request) -> Response:
    return await render_page(request, "gateways.html", lambda api, _u: gateways_context(api))


@router.get("/console/gateways/events")
async def gateways_events(request: Request, user: CurrentUser, limit: int | None = None) -> Response:
    """Server-sent ``gateways`` events: the rows that changed (the table when the fleet did)."""
    feed = GatewaysFeed(VIEWS.get_template("gateways_parts.html"))
    return stream_response(request, user, feed, "gateways", limit)
