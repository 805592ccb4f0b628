"""One gateway's page and its stream of changed fragments (what: :mod:`cloud.console.gateway_view`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from cloud.console.deps import VIEWS, CurrentUser
from cloud.console.gateway_view import GatewayFeed, gateway_context
from cloud.console.respond import render_page
from cloud.console.stream import stream_response

router = APIRouter()


@router.get("/gateways/{gateway_id}")
async def gateway(request: Request, gateway_id: str) -> Response:
    return await render_page(request, "gateway.html", lambda api, _u: gateway_context(api, gateway_id))


@router.get("/console/gateways/{gateway_id}/events")
async def gateway_events(
    request: Request, user: CurrentUser, gateway_id: str, limit: int | None = None
) -> Response:
    """Server-sent ``gateway`` events: state, telemetry, OTA, events and results that changed."""
    feed = GatewayFeed(gateway_id, VIEWS.get_template("gateway_parts.html"))
    return stream_response(request, user, feed, "gateway", limit)
