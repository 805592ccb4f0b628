"""Logging in (a password for a token of the user's role) and out (the token revoked).

A login's body is capped before it is read (:data:`LOGIN_MAX_BYTES`), and attempts go through
the process's :class:`~cloud.auth.throttle.LoginThrottle` before any Argon2 work: a locked
account or address gets 429 with Retry-After. Every wrong password is audited
(``user.login_failed``, with the source address), and so is the lockout it starts.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cloud.api.auth import require
from cloud.api.deps import SessionDep
from cloud.api.schemas_registry import LoginRequest, TokenCreated, TokenPublic
from cloud.auth.lifetimes import LOGIN_LIFETIME
from cloud.auth.service import Principal, Role, audit, authenticate_user, create_token, revoke_secret
from cloud.auth.throttle import Attempt, LoginThrottle, Throttled
from cloud.request_body import read_capped

log = logging.getLogger(__name__)
router = APIRouter(tags=["access"])
LOGIN_MAX_BYTES = 4096  # a username and password of the longest allowed lengths fit with room
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}
# Any valid token may end its own session, a gateway's as well as a person's.
AnyToken = Annotated[Principal, require(Role.gateway)]


@router.post(
    "/auth/login",
    responses={
        401: {"description": "Wrong username or password"},
        413: {"description": f"Body over {LOGIN_MAX_BYTES} bytes"},
        422: {"description": "The body is not a login request (JSON with username and password)"},
        429: {"description": "Too many failed logins for this account or address; see Retry-After"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": LoginRequest.model_json_schema()}},
        }
    },
)
async def login(request: Request, session: SessionDep) -> TokenCreated:
    """Exchange a user's password for a token of the user's role that lasts one session
    (what a console's login form does)."""
    raw = await read_capped(request, LOGIN_MAX_BYTES, "login request")
    try:
        body = LoginRequest.model_validate_json(raw)
    except ValidationError as exc:
        # Without the input: it holds the password.
        raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from None
    address = request.client.host if request.client else "unknown"
    throttle: LoginThrottle = request.app.state.login_throttle
    try:
        attempt = throttle.begin(body.username, address)
    except Throttled as exc:
        # No audit row per refusal: a flood of them would be a way to fill the database.
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    return await run_in_threadpool(_check_password, session, throttle, attempt, body)


def _check_password(
    session: Session, throttle: LoginThrottle, attempt: Attempt, body: LoginRequest
) -> TokenCreated:
    try:
        user = authenticate_user(session, body.username, body.password)
    except BaseException:
        throttle.abandoned(attempt)
        raise
    if user is None:
        locked_for = throttle.failed(attempt)
        stranger = Principal(f"anonymous@{attempt.address}", Role.viewer)
        details: dict[str, object] = {"address": attempt.address}
        if locked_for:
            details["locked_for_s"] = locked_for
            log.warning(
                "failed login for %r from %s: locked for %.0f s", body.username, attempt.address, locked_for
            )
        audit(session, stranger, "user.login_failed", body.username, **details)
        session.commit()
        raise HTTPException(401, "wrong username or password", headers=_UNAUTHORIZED)
    throttle.succeeded(attempt)
    name = body.token_name or f"login:{user.username}"
    row, secret = create_token(session, name, Role[user.role], user, lifetime=LOGIN_LIFETIME)
    who = Principal(f"user:{user.username}", Role[user.role], user_id=user.id)
    audit(session, who, "user.login", user.username, prefix=row.prefix, address=attempt.address)
    session.commit()
    return TokenCreated.model_validate({**TokenPublic.model_validate(row).model_dump(), "token": secret})


@router.post("/auth/logout", status_code=204, responses={401: {"description": "No valid token"}})
def logout(request: Request, session: SessionDep, who: AnyToken) -> None:
    """Revoke the token this request carries: it opens nothing afterwards."""
    token = request.headers["authorization"].partition(" ")[2].strip()
    revoke_secret(session, token)
    audit(session, who, "user.logout", who.shown_name)
    session.commit()
