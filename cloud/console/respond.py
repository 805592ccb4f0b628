"""How a console page answers: the page itself, the API's refusal as a page, or a form's redirect."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from cloud.console.api import ApiClient, ApiError
from cloud.console.deps import VIEWS
from cloud.console.session import User, current_user, form

log = logging.getLogger(__name__)

Build = Callable[[ApiClient, User], Awaitable[dict[str, Any]]]
FORM_ERRORS = (400, 404, 409, 422)  # the API refused the form's content: shown beside the form


def plain_refusal(status: int, detail: str) -> str:
    """What went wrong in words for the error page's headline ("There is no model 'x' ...").

    The API's 404s read "<what> '<id>' not found" (or "... does not exist"); its bare "Not Found"
    means no such path.
    """
    if status == 404:
        if detail == "Not Found":
            return "There is no such page in the console. Check the address, or start from the Overview."
        what = detail.removesuffix(" not found").removesuffix(" does not exist")
        if what != detail and what:
            return f"There is no {what}: it does not exist or was deleted."
        return f"Not found: {detail}"
    if status == 403:
        return f"Your role may not do this: {detail}"
    if status == 401:
        return "Your session has ended. Log in again."
    return f"The request failed: {detail}"


def error_page(request: Request, user: User, exc: ApiError) -> Response:
    """The API's refusal shown as a page: in words first, the API's status and reason below."""
    context = {
        "status": exc.status,
        "detail": exc.detail,
        "message": plain_refusal(exc.status, exc.detail),
        "user": user,
    }
    return VIEWS.TemplateResponse(request, "error.html", context, status_code=exc.status)


async def render_page(request: Request, name: str, build: Build) -> Response:
    """Template ``name`` with what ``build`` gathers through the API as the logged-in user.

    Without a login the browser goes to the login form and comes back here afterwards.
    """
    user = await current_user(request)
    if user is None:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    async with ApiClient(request.app, user.token) as api:
        try:
            context = await build(api, user)
        except ApiError as exc:
            return error_page(request, user, exc)
    return VIEWS.TemplateResponse(request, name, {"user": user, "page": name, **context})


def to_login() -> Response:
    """Where a form posted without a login goes."""
    return RedirectResponse("/login", status_code=303)


async def forward(
    request: Request, user: User, method: str, path: str, back: str, body: Any = None
) -> Response:
    """Send a console form's write to the API as ``user``: the API's refusal is the error page,
    its success goes ``back``."""
    async with ApiClient(request.app, user.token) as api:
        try:
            await api.request(method, path, json=body)
        except ApiError as exc:
            return error_page(request, user, exc)
    return RedirectResponse(back, status_code=303)


async def refused_form(
    request: Request,
    user: User,
    exc: ApiError,
    name: str,
    rebuild: Callable[[], Awaitable[dict[str, Any]]],
    apply: dict[str, Any],
) -> Response:
    """Page ``name`` again after the API refused its form: ``rebuild``'s context plus ``apply``
    (the errors beside the fields, the typed values), with the API's status. Any other refusal
    (401, 403, 5xx) is the error page."""
    if exc.status not in FORM_ERRORS:
        return error_page(request, user, exc)
    log.info("console form on %s refused (%s): %s", name, exc.status, exc.detail)
    try:
        context = await rebuild()
    except ApiError as again:
        return error_page(request, user, again)
    context.update(apply)
    page = {"user": user, "page": name, **context}
    return VIEWS.TemplateResponse(request, name, page, status_code=exc.status)


Fields = dict[str, str]


@dataclass(frozen=True)
class FormPage:
    """The page a form is on: its template, how to build it again through the API with the fields
    as typed, and what a refusal puts beside the form (the errors by field, the typed values)."""

    name: str
    rebuild: Callable[[ApiClient, Fields], Awaitable[dict[str, Any]]]
    on_refusal: Callable[[ApiError, Fields], dict[str, Any]]


async def submit_form(
    request: Request,
    user: User | None,
    page: FormPage,
    send: Callable[[ApiClient, Fields], Awaitable[Any]],
    then: Callable[[Any], str],
) -> Response:
    """A console form posted: without a login, the login form; else its fields sent to the API as
    ``user`` and on to ``then(answer)``. When the API refuses the form's content, ``page`` again
    with the refusal beside the form (:func:`refused_form`)."""
    if user is None:
        return to_login()
    fields = await form(request)
    async with ApiClient(request.app, user.token) as api:
        try:
            answer = await send(api, fields)
        except ApiError as exc:

            async def rebuild() -> dict[str, Any]:
                return await page.rebuild(api, fields)

            return await refused_form(request, user, exc, page.name, rebuild, page.on_refusal(exc, fields))
    return RedirectResponse(then(answer), status_code=303)
