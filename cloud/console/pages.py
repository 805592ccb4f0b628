"""The console's pages: each gathers its data through the API as the logged-in user, then renders.

The live Line and Rollout pages and the rollout forms are in :mod:`cloud.console.live`, as are the
streams of the Gateways pages registered here (what those show: :mod:`cloud.console.gateway_view`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from cloud.console import alert_rules
from cloud.console.api import ApiClient, ApiError
from cloud.console.gateway_view import gateway_context, gateways_context
from cloud.console.line_view import box_style as _box_style  # noqa: F401 - kept importable here
from cloud.console.respond import Build, error_page, render_page
from cloud.console.session import check_origin, current_user
from cloud.console.summary import overview


async def _models(api: ApiClient) -> dict[str, Any]:
    models = []
    for summary in await api.get("/models"):
        name = summary["name"]
        latest = await api.get(f"/models/{quote(name)}/versions/{quote(summary['latest'])}")
        versions = await api.get(f"/models/{quote(name)}/versions")
        models.append({**summary, "detail": latest, "all": versions})
    return {"models": models, "single": False}


async def _model_version(api: ApiClient, name: str, version: str) -> dict[str, Any]:
    detail = await api.get(f"/models/{quote(name)}/versions/{quote(version)}")
    return {
        "models": [{"name": name, "task": detail["task"], "latest": version, "detail": detail, "all": []}],
        "single": True,  # the version page: its card unfolded
    }


async def _alerts(api: ApiClient, show: str) -> dict[str, Any]:
    return await alert_rules.alerts_context(api, show)


def add_pages(router: APIRouter, views: Jinja2Templates) -> None:
    """Register every page on ``router``."""

    async def page(request: Request, name: str, build: Build) -> Response:
        return await render_page(views, request, name, build)

    async def act(request: Request, path: str, body: dict[str, Any], back: str) -> Response:
        """Forward a console form to the API as the user; the API's answer decides."""
        check_origin(request)
        user = await current_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        async with ApiClient(request.app, user.token) as api:
            try:
                await api.post(path, body)
            except ApiError as exc:
                return error_page(views, request, user, exc)
        return RedirectResponse(back, status_code=303)

    @router.get("/")
    async def home(request: Request) -> Response:
        return await page(request, "overview.html", lambda api, _u: overview(api))

    @router.get("/gateways")
    async def gateways(request: Request) -> Response:
        return await page(request, "gateways.html", lambda api, _u: gateways_context(api))

    @router.get("/gateways/{gateway_id}")
    async def gateway(request: Request, gateway_id: str) -> Response:
        return await page(request, "gateway.html", lambda api, _u: gateway_context(api, gateway_id))

    @router.get("/models")
    async def models(request: Request) -> Response:
        return await page(request, "models.html", lambda api, _u: _models(api))

    @router.get("/models/{name}/{version}")
    async def model_version(request: Request, name: str, version: str) -> Response:
        return await page(request, "models.html", lambda api, _u: _model_version(api, name, version))

    @router.get("/alerts")
    async def alerts(request: Request, show: str = "open") -> Response:
        return await page(
            request, "alerts.html", lambda api, _u: _alerts(api, show if show == "all" else "open")
        )

    @router.post("/alerts/{alert_id}/ack")
    async def alert_ack(request: Request, alert_id: str) -> Response:
        return await act(request, f"/alerts/{quote(alert_id)}/ack", {}, "/alerts")

    alert_rules.add_rule_forms(router, views)
