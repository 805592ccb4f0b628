"""The login form, logging in (a token of the user's role into the cookie) and logging out."""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from cloud.console.api import ApiClient, ApiError
from cloud.console.deps import VIEWS, FormUser
from cloud.console.session import check_origin, clear_login, form, revoke, set_login

log = logging.getLogger(__name__)

router = APIRouter()


def _safe_next(target: str) -> str:
    # Only same-site paths: '//evil.example' or 'https://...' would turn login into an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login")
async def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return VIEWS.TemplateResponse(request, "login.html", {"user": None, "next": _safe_next(next)})


@router.post("/login")
async def login(request: Request) -> Response:
    check_origin(request)
    fields = await form(request)
    username, password = fields.get("username", ""), fields.get("password", "")
    next = fields.get("next", "/")
    browser = (request.client.host, request.client.port) if request.client else None
    async with ApiClient(request.app, None, browser) as api:
        try:
            answer = await api.post("/auth/login", {"username": username, "password": password})
        except ApiError as exc:
            context = {"user": None, "next": _safe_next(next), "error": exc.detail, "username": username}
            page = VIEWS.TemplateResponse(request, "login.html", context, status_code=exc.status)
            if exc.retry_after is not None:
                page.headers["Retry-After"] = exc.retry_after
            return page
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_login(request, response, answer["token"], datetime.fromisoformat(answer["expires_at"]))
    log.info("console login: %s (%s)", username, answer["role"])
    return response


@router.post("/logout")
async def logout(request: Request, user: FormUser) -> Response:
    if user is not None:
        await revoke(request, user.token)  # a copied cookie stops working too
    response = RedirectResponse("/login", status_code=303)
    clear_login(response)
    return response
