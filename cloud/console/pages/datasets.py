"""The Datasets pages: every capture (with the operators' "capture frames" form) and one dataset's
frames as a gallery, a page of them at a time. Labelling frames is the API's for now
(``PUT /api/v1/datasets/{id}/labels``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response

from cloud.console.api import ApiClient, ApiError
from cloud.console.deps import CurrentUser, FormUser
from cloud.console.respond import Fields, FormPage, render_page, submit_form
from cloud.console.session import User

router = APIRouter()
CAPTURES_SHOWN = 100
FRAMES_PER_PAGE = 48
FORM_FIELDS = ("target", "slot", "frames", "label", "note")


async def datasets_context(api: ApiClient, values: Fields | None = None) -> dict[str, Any]:
    """The newest captures, and the form's known lines, gateways and slots with ``values`` typed."""
    captures = (await api.get("/captures", limit=CAPTURES_SHOWN))["items"]
    gateways = await api.get("/gateways")
    slots = sorted(
        {str(m["slot"]) for g in gateways for m in g.get("models") or [] if m.get("task") != "notes"}
    )
    lines = sorted({str(g["line"]) for g in gateways if g.get("line")})
    typed = {
        "target": f"line:{lines[0]}" if lines else "",
        "slot": slots[0] if slots else "",
        "frames": "150",
    }
    return {
        "captures": captures,
        "lines": lines,
        "gateway_ids": sorted(str(g["id"]) for g in gateways),
        "slots": slots,
        "values": {**typed, **(values or {})},
        "errors": {},
        "general_errors": [],
    }


def start_body(fields: Fields) -> dict[str, Any]:
    """The API's capture request from the form: ``target`` is ``line:NAME`` or ``gateway:ID``."""
    kind, _, name = fields.get("target", "").partition(":")
    body: dict[str, Any] = {"slot": fields.get("slot", ""), "frames": fields.get("frames", "")}
    body["line" if kind == "line" else "gateway"] = name
    for optional in ("label", "note"):
        if fields.get(optional, "").strip():
            body[optional] = fields[optional].strip()
    return body


def _start_refusal(exc: ApiError, _typed: Fields) -> dict[str, Any]:
    if not isinstance(exc.errors, list):
        return {"errors": {}, "general_errors": [exc.detail]}
    errors: dict[str, str] = {}
    general: list[str] = []
    for err in exc.errors:
        name = str((err.get("loc") or ["", ""])[-1])
        name = "target" if name in ("line", "gateway") else name
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if name in FORM_FIELDS:
            errors[name] = message
        else:
            general.append(message)
    return {"errors": errors, "general_errors": general}


START_PAGE = FormPage("datasets.html", datasets_context, _start_refusal)


@router.get("/datasets")
async def datasets(request: Request) -> Response:
    return await render_page(request, "datasets.html", lambda api, _u: datasets_context(api))


@router.post("/datasets")
async def start_capture(request: Request, user: FormUser) -> Response:
    """The "capture frames" form: sent to the API as the user, back to the list."""
    return await submit_form(
        request,
        user,
        START_PAGE,
        lambda api, fields: api.post("/captures", start_body(fields)),
        lambda _m: "/datasets",
    )


async def dataset_context(api: ApiClient, dataset_id: str, page: int) -> dict[str, Any]:
    """One dataset with one page of its frames."""
    offset = (max(page, 1) - 1) * FRAMES_PER_PAGE
    detail = await api.get(
        f"/datasets/{quote(dataset_id, safe='')}", files_offset=offset, files_limit=FRAMES_PER_PAGE
    )
    pages = max(1, -(-int(detail["frames"]) // FRAMES_PER_PAGE))
    return {"dataset": detail, "page_number": max(page, 1), "pages": pages}


@router.get("/datasets/{dataset_id}")
async def dataset(request: Request, dataset_id: str, page: int = 1) -> Response:
    async def build(api: ApiClient, _user: User) -> dict[str, Any]:
        return await dataset_context(api, dataset_id, page)

    return await render_page(request, "dataset.html", build)


@router.get("/console/datasets/{dataset_id}/files/{name}")
async def frame(request: Request, user: CurrentUser, dataset_id: str, name: str) -> Response:
    """A dataset's frame through the API with the cookie's token (an <img> cannot send a bearer)."""
    async with ApiClient(request.app, user.token) as api:
        try:
            answer = await api.request(
                "GET", f"/datasets/{quote(dataset_id, safe='')}/files/{quote(name, safe='')}"
            )
        except ApiError as exc:
            raise HTTPException(exc.status, exc.detail) from None
    # A frame never changes under its name: its SHA-256 is in the dataset.
    return Response(answer.content, media_type="image/png", headers={"Cache-Control": "max-age=86400"})
