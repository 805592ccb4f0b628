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


def running_versions(gateways: list[dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
    """(model, version) -> the gateways reporting it active in some slot, from one fleet listing.

    The same rule as the API's per-version ``running_on``, but for every version at once: a model
    whose newest version is not rolled out yet still runs its older ones somewhere.
    """
    running: dict[tuple[str, str], list[str]] = {}
    for gw in gateways:
        for slot in ((gw.get("reported") or {}).get("slots") or {}).values():
            active = (slot or {}).get("active") or {}
            key = (str(active.get("name")), str(active.get("version")))
            if active.get("name") and gw["id"] not in running.setdefault(key, []):
                running[key].append(gw["id"])
    return running


async def _models(api: ApiClient, only: str | None = None) -> dict[str, Any]:
    """Every model (or the one named ``only``: the API's 404 if it has no version)."""
    models = []
    if only is None:
        summaries = await api.get("/models")
    else:
        listed = await api.get(f"/models/{quote(only, safe='')}/versions")  # oldest first
        summaries = [{"name": only, "task": listed[-1]["task"], "latest": listed[-1]["version"]}]
    running = running_versions(await api.get("/gateways", reported="true"))
    for summary in summaries:
        name = summary["name"]
        latest = await api.get(f"/models/{quote(name, safe='')}/versions/{quote(summary['latest'], safe='')}")
        versions = await api.get(f"/models/{quote(name, safe='')}/versions")
        for v in versions:
            v["running_on"] = sorted(running.get((name, v["version"]), []))
        # Newest first: the versions running somewhere, each with its gateways.
        deployed = [v for v in reversed(versions) if v["running_on"]]
        total = len({g for v in deployed for g in v["running_on"]})
        models.append({**summary, "detail": latest, "all": versions, "deployed": deployed, "gateways": total})
    return {"models": models, "single": False, "one": only is not None}


async def _model_version(api: ApiClient, name: str, version: str) -> dict[str, Any]:
    detail = await api.get(f"/models/{quote(name, safe='')}/versions/{quote(version, safe='')}")
    return {
        "models": [
            {
                "name": name,
                "task": detail["task"],
                "latest": version,
                "detail": detail,
                "all": [],
                "deployed": [{"version": version, "running_on": detail["running_on"]}]
                if detail["running_on"]
                else [],
                "gateways": len(detail["running_on"]),
            }
        ],
        "single": True,  # the version page: its card unfolded
    }


async def _alerts(api: ApiClient, show: str, saved: str | None) -> dict[str, Any]:
    return await alert_rules.alerts_context(api, show, saved)


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

    @router.get("/models/{name}")
    async def model(request: Request, name: str) -> Response:
        return await page(request, "models.html", lambda api, _u: _models(api, name))

    @router.get("/models/{name}/{version}")
    async def model_version(request: Request, name: str, version: str) -> Response:
        return await page(request, "models.html", lambda api, _u: _model_version(api, name, version))

    @router.get("/alerts")
    async def alerts(request: Request, show: str = "open", saved: str | None = None) -> Response:
        shown = show if show == "all" else "open"
        return await page(request, "alerts.html", lambda api, _u: _alerts(api, shown, saved))

    @router.post("/alerts/{alert_id}/ack")
    async def alert_ack(request: Request, alert_id: str) -> Response:
        return await act(request, f"/alerts/{quote(alert_id)}/ack", {}, "/alerts")

    alert_rules.add_rule_forms(router, views)
