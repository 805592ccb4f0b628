"""The console's pages: each gathers its data through the API as the logged-in user, then renders."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from cloud.console.api import ApiClient, ApiError
from cloud.console.session import User, check_origin, current_user, form
from cloud.console.summary import overview
from protocol.messages import utcnow

Build = Callable[[ApiClient, User], Awaitable[dict[str, Any]]]
# Selectable ranges of the Line page: (window, bucket width in seconds).
RANGES = {"1h": (timedelta(hours=1), 60), "6h": (timedelta(hours=6), 600), "24h": (timedelta(days=1), 3600),
          "7d": (timedelta(days=7), 6 * 3600)}  # fmt: skip
DEFECT_SAMPLE = 1000  # the breakdown counts the latest N defects of the range


def _items(answer: Any) -> list[dict[str, Any]]:
    # List endpoints answer either a bare list or a page with 'items'.
    if isinstance(answer, dict):
        items: list[dict[str, Any]] = answer.get("items", [])
        return items
    return list(answer or [])


def _box_style(box: dict[str, Any] | None, crop: dict[str, Any] | None) -> str:
    """CSS placing the anomaly box (source-frame pixels) over its thumbnail (a crop of the frame)."""
    if not box or not crop or not crop.get("w") or not crop.get("h"):
        return ""

    def pct(value: float, size: float) -> float:
        return round(min(max(100 * value / size, 0.0), 100.0), 2)

    left, top = pct(box["x"] - crop["x"], crop["w"]), pct(box["y"] - crop["y"], crop["h"])
    width = min(pct(box["w"], crop["w"]), 100 - left)
    height = min(pct(box["h"], crop["h"]), 100 - top)
    return f"left:{left}%;top:{top}%;width:{width}%;height:{height}%"


async def _line(api: ApiClient, line: str, range_key: str) -> dict[str, Any]:
    window, interval = RANGES.get(range_key, RANGES["1h"])
    now = utcnow()
    since = (now - window).isoformat()
    stats = await api.get(
        f"/lines/{quote(line)}/stats", since=since, until=now.isoformat(), interval_s=interval
    )
    defects = await api.get("/results", line=line, is_defect="true", since=since, limit=DEFECT_SAMPLE)
    breakdown = Counter(r["label"] for r in defects["items"]).most_common()
    gallery = _items(await api.get_or(None, f"/lines/{quote(line)}/defects", limit=24))
    for item in gallery:
        item["box_style"] = _box_style(item.get("box"), item.get("crop"))
    return {
        "line": line,
        "range": range_key if range_key in RANGES else "1h",
        "ranges": list(RANGES),
        "stats": stats,
        "counts": [b["results"] for b in stats["buckets"]],
        "rates": [b["defect_rate"] for b in stats["buckets"]],
        "labels": [b["start"][:16].replace("T", " ") for b in stats["buckets"]],
        "breakdown": breakdown,
        "breakdown_capped": len(defects["items"]) >= DEFECT_SAMPLE,
        "gallery": gallery,
        "gallery_available": gallery
        or await api.get_or(None, f"/lines/{quote(line)}/defects", limit=1) is not None,
    }


async def _gateway(api: ApiClient, gateway_id: str) -> dict[str, Any]:
    gw = await api.get(f"/gateways/{quote(gateway_id)}")
    ota = await api.get(f"/gateways/{quote(gateway_id)}/ota")
    results = await api.get("/results", gateway=gateway_id, limit=20)
    return {"gw": gw, "ota": ota, "results": results["items"]}


async def _models(api: ApiClient) -> dict[str, Any]:
    models = []
    for summary in await api.get("/models"):
        name = summary["name"]
        latest = await api.get(f"/models/{quote(name)}/versions/{quote(summary['latest'])}")
        versions = await api.get(f"/models/{quote(name)}/versions")
        models.append({**summary, "detail": latest, "all": versions})
    return {"models": models}


async def _model_version(api: ApiClient, name: str, version: str) -> dict[str, Any]:
    detail = await api.get(f"/models/{quote(name)}/versions/{quote(version)}")
    return {
        "models": [{"name": name, "task": detail["task"], "latest": version, "detail": detail, "all": []}]
    }


async def _rollouts(api: ApiClient) -> dict[str, Any]:
    return {"rollouts": await api.get("/rollouts"), "models": await api.get("/models")}


async def _alerts(api: ApiClient, show: str) -> dict[str, Any]:
    alerts = await api.get_or(None, "/alerts", state=show)
    rules = await api.get_or(None, "/alert-rules")
    return {"alerts": alerts, "rules": rules, "show": show}


def add_pages(router: APIRouter, views: Jinja2Templates) -> None:
    """Register every page on ``router``."""

    async def page(request: Request, name: str, build: Build) -> Response:
        user = await current_user(request)
        if user is None:
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        async with ApiClient(request.app, user.token) as api:
            try:
                context = await build(api, user)
            except ApiError as exc:
                context = {"status": exc.status, "detail": exc.detail, "user": user}
                return views.TemplateResponse(request, "error.html", context, status_code=exc.status)
        return views.TemplateResponse(request, name, {"user": user, "page": name, **context})

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
                context = {"status": exc.status, "detail": exc.detail, "user": user}
                return views.TemplateResponse(request, "error.html", context, status_code=exc.status)
        return RedirectResponse(back, status_code=303)

    @router.get("/")
    async def home(request: Request) -> Response:
        return await page(request, "overview.html", lambda api, _u: overview(api))

    @router.get("/lines/{line}")
    async def line(request: Request, line: str, range: str = "1h") -> Response:  # noqa: A002
        return await page(request, "line.html", lambda api, _u: _line(api, line, range))

    @router.get("/gateways")
    async def gateways(request: Request) -> Response:
        async def build(api: ApiClient, _u: User) -> dict[str, Any]:
            return {"gateways": await api.get("/gateways")}

        return await page(request, "gateways.html", build)

    @router.get("/gateways/{gateway_id}")
    async def gateway(request: Request, gateway_id: str) -> Response:
        return await page(request, "gateway.html", lambda api, _u: _gateway(api, gateway_id))

    @router.get("/models")
    async def models(request: Request) -> Response:
        return await page(request, "models.html", lambda api, _u: _models(api))

    @router.get("/models/{name}/{version}")
    async def model_version(request: Request, name: str, version: str) -> Response:
        return await page(request, "models.html", lambda api, _u: _model_version(api, name, version))

    @router.get("/rollouts")
    async def rollouts(request: Request) -> Response:
        return await page(request, "rollouts.html", lambda api, _u: _rollouts(api))

    @router.get("/rollouts/{rollout_id}")
    async def rollout(request: Request, rollout_id: str) -> Response:
        async def build(api: ApiClient, _u: User) -> dict[str, Any]:
            return {"r": await api.get(f"/rollouts/{quote(rollout_id)}")}

        return await page(request, "rollout.html", build)

    @router.post("/rollouts/{rollout_id}/{action}")
    async def rollout_action(request: Request, rollout_id: str, action: str) -> Response:
        reason = (await form(request)).get("reason", "")
        path = f"/rollouts/{quote(rollout_id)}/{quote(action)}"
        return await act(request, path, {"reason": reason}, f"/rollouts/{quote(rollout_id)}")

    @router.post("/rollouts")
    async def rollout_create(request: Request) -> Response:
        f = await form(request)
        target = {
            "line": f.get("line") or None,
            "gateways": [g.strip() for g in f.get("gateways", "").split(",") if g.strip()],
        }
        body: dict[str, Any] = {
            "model_name": f.get("model_name", ""),
            "version": f.get("version", ""),
            "target": target,
            "waves": f.get("waves") or "1,10%,50%,100%",
        }
        if f.get("bake_s"):
            body["bake_s"] = f["bake_s"]  # the API validates it and says what is wrong
        return await act(request, "/rollouts", body, "/rollouts")

    @router.get("/alerts")
    async def alerts(request: Request, show: str = "open") -> Response:
        return await page(
            request, "alerts.html", lambda api, _u: _alerts(api, show if show == "all" else "open")
        )

    @router.post("/alerts/{alert_id}/ack")
    async def alert_ack(request: Request, alert_id: str) -> Response:
        return await act(request, f"/alerts/{quote(alert_id)}/ack", {}, "/alerts")
