"""Rendering a console page or its error page: shared by every page module."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from cloud.console.api import ApiClient, ApiError
from cloud.console.session import User, current_user

Build = Callable[[ApiClient, User], Awaitable[dict[str, Any]]]


def error_page(views: Jinja2Templates, request: Request, user: User, exc: ApiError) -> Response:
    """The API's refusal shown as a page with the API's own status and reason."""
    context = {"status": exc.status, "detail": exc.detail, "user": user}
    return views.TemplateResponse(request, "error.html", context, status_code=exc.status)


async def render_page(views: Jinja2Templates, request: Request, name: str, build: Build) -> Response:
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
            return error_page(views, request, user, exc)
    return views.TemplateResponse(request, name, {"user": user, "page": name, **context})
