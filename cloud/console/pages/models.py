"""The Models pages: every model, one model, one version; each with the gateways it runs on."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from cloud.console.api import ApiClient
from cloud.console.respond import render_page

router = APIRouter()


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


async def models_context(api: ApiClient, only: str | None = None) -> dict[str, Any]:
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


async def version_context(api: ApiClient, name: str, version: str) -> dict[str, Any]:
    """One version: its card unfolded, with the gateways it runs on."""
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
        "single": True,
    }


@router.get("/models")
async def models(request: Request) -> Response:
    return await render_page(request, "models.html", lambda api, _u: models_context(api))


@router.get("/models/{name}")
async def model(request: Request, name: str) -> Response:
    return await render_page(request, "models.html", lambda api, _u: models_context(api, name))


@router.get("/models/{name}/{version}")
async def model_version(request: Request, name: str, version: str) -> Response:
    return await render_page(request, "models.html", lambda api, _u: version_context(api, name, version))
