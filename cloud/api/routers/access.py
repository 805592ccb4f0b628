"""Users, API tokens and the audit log (admin only); logging in and out is in ``login``."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select

from cloud.api.auth import Admin
from cloud.api.deps import SessionDep, SettingsDep
from cloud.api.params import RowId
from cloud.api.routers.login import router as login_router
from cloud.api.schemas_registry import (
    AuditPublic,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from cloud.auth.demo_accounts import demo_credentials_problem
from cloud.auth.lifetimes import DEFAULT_API_TOKEN_LIFETIME, parse_lifetime
from cloud.auth.service import (
    AuthError,
    Role,
    audit,
    audit_new_token,
    create_gateway_token,
    create_token,
    create_user,
    set_user_disabled,
)
from cloud.db.models import ApiToken, AuditEntry, User

router = APIRouter(tags=["access"])
router.include_router(login_router)


@router.post("/users", status_code=201, responses={409: {"description": "The user name is taken"}})
def add_user(body: UserCreate, session: SessionDep, settings: SettingsDep, who: Admin) -> UserPublic:
    """Create a user (in the production profile, never with the demo's names or password)."""
    problem = (
        demo_credentials_problem(body.username, body.password) if settings.profile == "production" else None
    )
    if problem is not None:
        raise HTTPException(422, f"production profile: {problem}")
    try:
        user = create_user(session, body.username, body.password, Role.parse(body.role))
    except AuthError as exc:
        raise HTTPException(409, str(exc)) from None
    audit(session, who, "user.create", body.username, role=body.role)
    session.commit()
    return UserPublic.model_validate(user)


@router.patch("/users/{username}", responses={404: {"description": "No such user"}})
def update_user(username: str, body: UserUpdate, session: SessionDep, who: Admin) -> UserPublic:
    """Disable a user (their tokens stop working at once: all are revoked) or enable them again."""
    try:
        user, revoked = set_user_disabled(session, username, body.disabled)
    except AuthError as exc:
        raise HTTPException(404, str(exc)) from None
    audit(session, who, "user.disable" if body.disabled else "user.enable", username, tokens_revoked=revoked)
    session.commit()
    return UserPublic.model_validate(user)


@router.get("/users")
def list_users(session: SessionDep, _who: Admin) -> list[UserPublic]:
    """Every user."""
    return [UserPublic.model_validate(u) for u in session.scalars(select(User).order_by(User.username))]


@router.post("/tokens", status_code=201)
def add_token(body: TokenCreate, session: SessionDep, who: Admin) -> TokenCreated:
    """Mint a token; the response is the only place its secret appears. A ``gateway`` token is
    bound to ``gateway_id`` and may only upload that gateway's captures. It expires after
    ``expires`` (90 days unless given)."""
    try:
        lifetime = parse_lifetime(body.expires) if body.expires else DEFAULT_API_TOKEN_LIFETIME
        if body.role == "gateway":
            if body.gateway_id is None:
                raise AuthError("role gateway needs gateway_id: a gateway token is bound to one gateway")
            row, secret = create_gateway_token(session, body.gateway_id, body.name, lifetime)
        elif body.gateway_id is not None:
            raise AuthError(f"gateway_id is for gateway tokens; a {body.role} token is not bound to one")
        else:
            row, secret = create_token(session, body.name, Role.parse(body.role), lifetime=lifetime)
    except ValueError as exc:  # AuthError too
        raise HTTPException(422, str(exc)) from None
    audit_new_token(session, who, row)
    session.commit()
    return TokenCreated.model_validate({**TokenPublic.model_validate(row).model_dump(), "token": secret})


@router.get("/tokens")
def list_tokens(session: SessionDep, _who: Admin) -> list[TokenPublic]:
    """Every token, without secrets."""
    return [TokenPublic.model_validate(t) for t in session.scalars(select(ApiToken).order_by(ApiToken.id))]


@router.delete("/tokens/{token_id}", status_code=204, responses={404: {"description": "Unknown token"}})
def revoke_token(token_id: RowId, session: SessionDep, who: Admin) -> None:
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
