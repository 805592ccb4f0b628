"""Users, API tokens and the audit log (admin only, except reading one's own nothing)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select

from cloud.api.auth import Admin
from cloud.api.deps import SessionDep
from cloud.api.schemas_registry import (
    AuditPublic,
    LoginRequest,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UserCreate,
    UserPublic,
)
from cloud.auth.service import AuthError, Principal, Role, audit, authenticate_user, create_token, create_user
from cloud.db.models import ApiToken, AuditEntry, User

router = APIRouter(tags=["access"])


@router.post("/auth/login", responses={401: {"description": "Wrong username or password"}})
def login(body: LoginRequest, session: SessionDep) -> TokenCreated:
    """Exchange a user's password for a token of the user's role (what a console's login form does)."""
    user = authenticate_user(session, body.username, body.password)
    if user is None:
        raise HTTPException(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    row, secret = create_token(session, body.token_name or f"login:{user.username}", Role[user.role], user)
    audit(
        session,
        Principal(f"user:{user.username}", Role[user.role]),
        "user.login",
        user.username,
        prefix=row.prefix,
    )
    session.commit()
    return TokenCreated.model_validate({**TokenPublic.model_validate(row).model_dump(), "token": secret})


@router.post("/users", status_code=201)
def add_user(body: UserCreate, session: SessionDep, who: Admin) -> UserPublic:
    """Create a user."""
    try:
        user = create_user(session, body.username, body.password, Role.parse(body.role))
    except AuthError as exc:
        raise HTTPException(409, str(exc)) from None
    audit(session, who, "user.create", body.username, role=body.role)
    session.commit()
    return UserPublic.model_validate(user)


@router.get("/users")
def list_users(session: SessionDep, _who: Admin) -> list[UserPublic]:
    """Every user."""
    return [UserPublic.model_validate(u) for u in session.scalars(select(User).order_by(User.username))]


@router.post("/tokens", status_code=201)
def add_token(body: TokenCreate, session: SessionDep, who: Admin) -> TokenCreated:
    """Mint a token; the response is the only place its secret appears."""
    row, secret = create_token(session, body.name, Role.parse(body.role))
    audit(session, who, "token.create", body.name, role=body.role, prefix=row.prefix)
    session.commit()
    return TokenCreated.model_validate({**TokenPublic.model_validate(row).model_dump(), "token": secret})


@router.get("/tokens")
def list_tokens(session: SessionDep, _who: Admin) -> list[TokenPublic]:
    """Every token, without secrets."""
    return [TokenPublic.model_validate(t) for t in session.scalars(select(ApiToken).order_by(ApiToken.id))]


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, session: SessionDep, who: Admin) -> None:
    """Revoke a token (kept for the audit trail)."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise HTTPException(404, f"token {token_id} not found")
    row.revoked = True
    audit(session, who, "token.revoke", row.name, prefix=row.prefix)
    session.commit()


@router.get("/audit")
def read_audit(
    session: SessionDep,
    _who: Admin,
    limit: int = Query(100, ge=1, le=1000),
    actor: str | None = None,
    action: str | None = None,
) -> list[AuditPublic]:
    """The audit log, newest first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    return [AuditPublic.model_validate(e) for e in session.scalars(query)]
