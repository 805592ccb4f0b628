"""The Training pages: every training run, and one run's view (state, log tail, figures, lineage,
whether it awaits a signature), plus the dataset page's "Teach new normal" button. Everything goes
through the API as the logged-in user, so the API's role gate (operator to teach) is the console's."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from cloud.console.api import ApiClient, ApiError
from cloud.console.deps import CurrentUser, FormUser
from cloud.console.respond import error_page, render_page, to_login

router = APIRouter()
RUNS_SHOWN = 100
# States a run leaves on its own: the run view reloads itself while in one (teach.js).
ACTIVE = ("queued", "running")


async def runs_context(api: ApiClient, dataset: str | None) -> dict[str, Any]:
    """The newest runs, optionally of one dataset."""
    params: dict[str, Any] = {"limit": RUNS_SHOWN}
    if dataset:
        params["dataset"] = dataset
    return {"runs": (await api.get("/training-runs", **params))["items"], "dataset_filter": dataset}


async def run_context(api: ApiClient, run_id: int) -> dict[str, Any]:
    """One run with its lineage."""
    run = await api.get(f"/training-runs/{run_id}")
    return {"run": run, "active": run["status"] in ACTIVE}


@router.get("/training")
async def training_runs(request: Request, dataset: str | None = None) -> Response:
    return await render_page(request, "training_runs.html", lambda api, _u: runs_context(api, dataset))


@router.get("/training/{run_id}")
async def training_run(request: Request, run_id: int) -> Response:
    return await render_page(request, "training_run.html", lambda api, _u: run_context(api, run_id))


@router.post("/datasets/{dataset_id}/teach")
async def teach(request: Request, user: FormUser, dataset_id: str) -> Response:
    """The dataset page's "Teach new normal" button: a run as the user, then its view (a dataset
    that cannot teach shows its failed run with the reason there too)."""
    if user is None:
        return to_login()
    async with ApiClient(request.app, user.token) as api:
        try:
            answer = await api.request("POST", "/training-runs", json={"dataset_id": dataset_id})
        except ApiError as exc:
            return error_page(request, user, exc)
    return RedirectResponse(f"/training/{answer.json()['id']}", status_code=303)


@router.get("/console/training/{run_id}/files/{name}")
async def run_file(request: Request, user: CurrentUser, run_id: int, name: str) -> Response:
    """A file of a run's candidate through the API with the cookie's token (a link cannot send a bearer)."""
    async with ApiClient(request.app, user.token) as api:
        try:
            answer = await api.request("GET", f"/training-runs/{run_id}/files/{quote(name, safe='')}")
        except ApiError as exc:
            raise HTTPException(exc.status, exc.detail) from None
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(answer.content, media_type="application/octet-stream", headers=disposition)
