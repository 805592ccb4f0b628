"""FastAPI dependencies that authenticate a bearer token and check its role.

Reads need ``viewer``; in the demo profile they are also open without a token (the demo API
binds to localhost and the existing console and tools read without logging in). Writes always
need a token of the right role, in every profile.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from cloud.api.deps import SessionDep, SettingsDep
from cloud.auth.service import Principal, Role, principal_for_token

ANONYMOUS = Principal("anonymous", Role.viewer)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require(role: Role, anonymous_read: bool = False) -> Any:
    """A dependency that yields the request's principal if it holds at least ``role``."""

    def dependency(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
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
        principal = principal_for_token(session, token)
        if principal is None:
            raise HTTPException(
                401, detail="invalid or revoked API token", headers={"WWW-Authenticate": "Bearer"}
            )
        session.commit()  # last_used_at
        if principal.role < role:
            raise HTTPException(
                403,
                detail=f"this needs the {role.name} role; token {principal.name} is {principal.role.name}",
            )
        return principal

    return Depends(dependency)


Viewer = Annotated[Principal, require(Role.viewer, anonymous_read=True)]
Operator = Annotated[Principal, require(Role.operator)]
Admin = Annotated[Principal, require(Role.admin)]
