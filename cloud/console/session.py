"""Login state: the API token in an HttpOnly, SameSite=Strict cookie, and the CSRF origin check.

The token is a login's: it expires after ``cloud.auth.lifetimes.LOGIN_LIFETIME`` (12 hours), and
the cookie with it; logout revokes it, so a copied cookie stops working too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from fastapi import HTTPException, Request, Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from cloud.auth.service import Role, principal_for_token, revoke_secret
from cloud.request_body import read_capped
from protocol.messages import utcnow

COOKIE = "fe_console"


@dataclass(frozen=True)
class User:
    """The logged-in principal as the console sees it."""

    name: str
    role: Role
    token: str

    @property
    def is_operator(self) -> bool:
        """May pause, resume and abort rollouts and acknowledge alerts."""
        return self.role >= Role.operator

    @property
    def is_admin(self) -> bool:
        """May create rollouts and alert rules."""
        return self.role >= Role.admin


def _lookup(request: Request, token: str) -> User | None:
    sessions: sessionmaker[Session] = request.app.state.sessions
    with sessions() as session:
        principal = principal_for_token(session, token)
        session.commit()
    if principal is None:
        return None
    # The user the token was minted for, never a name its holder chose (the token's own name).
    return User(principal.shown_name, principal.role, token)


async def current_user(request: Request) -> User | None:
    """The user whose valid token is in the cookie, or None."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    return await run_in_threadpool(_lookup, request, token)


def set_login(request: Request, response: Response, token: str, expires_at: datetime) -> None:
    """Keep ``token`` where scripts cannot read it and other sites cannot send it, until it expires."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=max(int((expires_at - utcnow()).total_seconds()), 0),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_login(response: Response) -> None:
    """Forget the token in the browser."""
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def check_origin(request: Request) -> None:
    """Refuse a state-changing request that another site's page sent (CSRF).

    SameSite=Strict already keeps the cookie off cross-site requests; the Origin (or Referer)
    check also covers old browsers and same-site subdomains.
    """
    sent = request.headers.get("origin") or request.headers.get("referer")
    if not sent:
        raise HTTPException(403, "console form refused: the request carries no Origin or Referer")
    parts = urlsplit(sent)
    own = urlsplit(str(request.base_url))
    if (parts.scheme, parts.netloc) != (own.scheme, own.netloc):
        raise HTTPException(
            403, f"console form refused: origin {parts.scheme}://{parts.netloc} is not this site"
        )


def _revoke(request: Request, token: str) -> None:
    sessions: sessionmaker[Session] = request.app.state.sessions
    with sessions.begin() as session:
        revoke_secret(session, token)


async def revoke(request: Request, token: str) -> None:
    """Revoke the login token on logout, so a copied cookie stops working too."""
    await run_in_threadpool(_revoke, request, token)


MAX_FORM_BYTES = 64 * 1024


async def form(request: Request) -> dict[str, str]:
    """The fields of an urlencoded console form (parsed here: no python-multipart dependency),
    refused (413) past :data:`MAX_FORM_BYTES` before more than that is read."""
    body = await read_capped(request, MAX_FORM_BYTES, "console form")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[-1] for key, values in fields.items()}
