"""The Datasets pages: every capture (with the operators' "capture frames" form) and one dataset's
frames as a gallery, a page of them at a time, which operators label in bulk from the label bar
(the labels go to ``PUT /api/v1/datasets/{id}/labels`` as the user; what the bar offers:
:mod:`cloud.console.dataset_labels`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from cloud.console.api import ApiClient, ApiError
from cloud.console.dataset_labels import LabelRequestError, label_choices, label_counts, label_request
from cloud.console.deps import CurrentUser, FormUser
from cloud.console.respond import Fields, FormPage, plain_refusal, render_page, submit_form
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
    """One dataset with one page of its frames, its label counts and the label bar's kinds."""
    offset = (max(page, 1) - 1) * FRAMES_PER_PAGE
    detail = await api.get(
        f"/datasets/{quote(dataset_id, safe='')}", files_offset=offset, files_limit=FRAMES_PER_PAGE
    )
    pages = max(1, -(-int(detail["frames"]) // FRAMES_PER_PAGE))
    return {
        "dataset": detail,
        "page_number": max(page, 1),
        "pages": pages,
        "choices": await label_choices(api, detail),
        "counts": label_counts(detail["labels"], int(detail["frames"])),
    }


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


@router.post("/console/datasets/{dataset_id}/labels")
async def set_labels(request: Request, user: FormUser, dataset_id: str) -> Response:
    """The label bar (labels.js): one label for the selected frames, sent to the API as the user.

    Answers JSON (the frames labelled and the dataset's new counts) or, refused, the reason in
    words with the API's status, which the page shows beside the bar.
    """
    if user is None:
        return PlainTextResponse(plain_refusal(401, ""), status_code=401)
    try:
        label, files = await label_request(request)
    except LabelRequestError as exc:
        return PlainTextResponse(str(exc), status_code=422)
    path = f"/datasets/{quote(dataset_id, safe='')}/labels"
    async with ApiClient(request.app, user.token) as api:
        try:
            answer = await api.request("PUT", path, json={"labels": dict.fromkeys(files, label)})
        except ApiError as exc:
            return PlainTextResponse(plain_refusal(exc.status, _reason(exc)), status_code=exc.status)
    applied = answer.json()
    # The API's counts cover every file of the dataset ('unlabelled' included): their sum is its size.
    counts = label_counts(applied["labels"], sum(applied["labels"].values()))
    return JSONResponse({"label": label, "files": files, "changed": applied["changed"], **counts})


def _reason(exc: ApiError) -> str:
    """The API's refusal in one line: a validation list as its messages (e.g. a bad kind)."""
    if not isinstance(exc.errors, list):
        return exc.detail
    found = [str(e.get("msg", "invalid")) for e in exc.errors if isinstance(e, dict)]
    return "; ".join(m.removeprefix("Value error, ") for m in found) or exc.detail
