"""FastAPI dependencies that authenticate a bearer token and check its role.

Reads need ``viewer``; in the demo profile they are also open without a token (the demo API
binds to localhost and the existing console and tools read without logging in). Writes always
need a token of the right role, in every profile. A token that opens nothing (unknown, revoked,
expired, or of a disabled user) is a 401 that says which.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from cloud.api.deps import SessionDep, SettingsDep
from cloud.auth.service import Principal, Role, TokenRefused, check_token

ANONYMOUS = Principal("anonymous", Role.viewer)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(
    request: Request, session: SessionDep, settings: SettingsDep, role: Role, anonymous_read: bool = False
) -> Principal:
    """The request's principal if it holds at least ``role``; 401 or 403 otherwise."""
    token = _bearer(request)
    if token is None:
        if anonymous_read and settings.profile == "demo":
            return ANONYMOUS
        raise HTTPException(
            401,
            detail="authentication required: send 'Authorization: Bearer <token>' "
            "(create one with 'factory-cloud tokens create --role ROLE')",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        principal = check_token(session, token)
    except TokenRefused as exc:
        raise HTTPException(401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    session.commit()  # last_used_at
    if principal.role < role:
        raise HTTPException(
            403,
            detail=f"this needs the {role.name} role; token {principal.name} is {principal.role.name}",
        )
    return principal


def require(role: Role, anonymous_read: bool = False) -> Any:
    """A dependency that yields the request's principal if it holds at least ``role``."""

    def dependency(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
        return authenticate(request, session, settings, role, anonymous_read)

    return Depends(dependency)


def _capture_uploader(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
    """A gateway's own token (bound to it), or an admin's; nothing else may upload captures."""
    principal = authenticate(request, session, settings, Role.gateway)
    if principal.role is Role.gateway and principal.gateway_id is None:
        raise HTTPException(403, detail=f"token {principal.name} is a gateway token bound to no gateway")
    if principal.role is not Role.gateway and principal.role < Role.admin:
        raise HTTPException(
            403,
            detail=f"capture uploads need a gateway's token or the admin role; token {principal.name} "
            f"is {principal.role.name}",
        )
    return principal


Viewer = Annotated[Principal, require(Role.viewer, anonymous_read=True)]
Operator = Annotated[Principal, require(Role.operator)]
Admin = Annotated[Principal, require(Role.admin)]
# Capture file uploads and capture registration: a gateway for itself, or an admin.
CaptureUploader = Annotated[Principal, Depends(_capture_uploader)]
