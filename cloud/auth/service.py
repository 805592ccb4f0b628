"""Users (argon2 password hashes), API tokens (stored as SHA-256) and the audit log.

Tokens are 32 random bytes, so a fast hash is enough to store them: nobody can brute-force a
256-bit secret, and a lookup by hash stays one indexed query per request. Passwords are chosen
by people and get a slow, salted KDF (argon2id).

Every token expires (``cloud.auth.lifetimes``), and a token minted for a user stops working the
moment that user is disabled. The audit log names the user behind a token (``user:<name>`` and
the user's id), never a name the token's holder chose.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.auth.lifetimes import DEFAULT_API_TOKEN_LIFETIME, check_lifetime
from cloud.db.models import ApiToken, AuditEntry, User
from protocol.messages import utcnow
from protocol.topics import TopicError, validate_gateway_id

TOKEN_PREFIX = "fe_"  # noqa: S105  # a marker that makes leaked tokens greppable, not a secret
_hasher = PasswordHasher()


class Role(IntEnum):
    """Roles in increasing power: each one may do everything the one below may.

    ``gateway`` is below every person's role, so a gateway's token fails every check that asks
    for one; it is bound to one gateway and only the capture uploads accept it
    (``cloud.api.auth.CaptureUploader``).
    """

    gateway = 0
    viewer = 1
    operator = 2
    admin = 3

    @classmethod
    def parse(cls, value: str) -> Role:
        """The person's role named ``value``; ValueError listing the valid ones otherwise."""
        role = cls.__members__.get(value)
        if role is None or role is cls.gateway:
            raise ValueError(f"unknown role {value!r} (choose viewer, operator or admin)")
        return role


PERSON_ROLES = (Role.viewer, Role.operator, Role.admin)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a request: a name for the audit log, a role, and for a gateway token its gateway.

    A user's token is named ``user:<username>`` with ``user_id`` set; other tokens ``token:<name>``.
    """

    name: str
    role: Role
    gateway_id: str | None = None
    user_id: int | None = None

    @property
    def shown_name(self) -> str:
        """The name to show a person: the user's own name for a user's token."""
        return self.name.removeprefix("user:")


class AuthError(ValueError):
    """A user or token that cannot be created; the message says why."""


class TokenRefused(AuthError):
    """A presented token that opens nothing: unknown, revoked, expired or its user disabled."""


def hash_token(token: str) -> str:
    """The stored form of an API token."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, username: str, password: str, role: Role) -> User:
    """Add a user with an argon2 hash of ``password``; AuthError if the name is taken or too weak."""
    if len(password) < 8:
        raise AuthError("password must have at least 8 characters")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise AuthError(f"user {username!r} already exists")
    user = User(username=username, password_hash=_hasher.hash(password), role=role.name, created_at=utcnow())
    session.add(user)
    session.flush()
    return user


def authenticate_user(session: Session, username: str, password: str) -> User | None:
    """The user if ``password`` is right (rehashing an outdated hash), else None."""
    user = session.scalar(select(User).where(User.username == username, User.disabled.is_(False)))
    if user is None:
        _hasher.hash(password)  # same work either way, so timing does not reveal which names exist
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def create_token(
    session: Session,
    name: str,
    role: Role,
    user: User | None = None,
    lifetime: timedelta = DEFAULT_API_TOKEN_LIFETIME,
) -> tuple[ApiToken, str]:
    """A new API token expiring after ``lifetime``; returns the row and the secret, which is shown
    once and never stored."""
    if role is Role.gateway:
        raise AuthError("a gateway token is bound to one gateway: mint it with create_gateway_token")
    if user is not None and role > Role[user.role]:
        raise AuthError(f"user {user.username!r} is {user.role}; cannot mint a {role.name} token")
    return _mint(session, name, role, lifetime, user_id=user.id if user else None)


def create_gateway_token(
    session: Session,
    gateway_id: str,
    name: str | None = None,
    lifetime: timedelta = DEFAULT_API_TOKEN_LIFETIME,
) -> tuple[ApiToken, str]:
    """A token for ``gateway_id`` alone: it may upload capture files and register that gateway's
    captures, nothing else. Returns the row and the secret (shown once)."""
    try:
        validate_gateway_id(gateway_id)
    except TopicError as exc:
        raise AuthError(str(exc)) from None
    return _mint(session, name or f"gateway:{gateway_id}", Role.gateway, lifetime, gateway_id=gateway_id)


def _mint(
    session: Session,
    name: str,
    role: Role,
    lifetime: timedelta,
    user_id: int | None = None,
    gateway_id: str | None = None,
) -> tuple[ApiToken, str]:
    try:
        check_lifetime(lifetime)
    except ValueError as exc:
        raise AuthError(str(exc)) from None
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiToken(
        token_hash=hash_token(secret),
        prefix=secret[:10],
        name=name,
        role=role.name,
        user_id=user_id,
        gateway_id=gateway_id,
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    return row, secret


def check_token(session: Session, token: str, now: datetime | None = None) -> Principal:
    """The principal of a token that is known, unrevoked, unexpired and whose user (if any) is
    enabled; :class:`TokenRefused` saying which of these it is not."""
    now = now or utcnow()
    found = session.execute(
        select(ApiToken, User)
        .outerjoin(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_token(token))
    ).one_or_none()
    if found is None:
        raise TokenRefused("unknown API token")
    row, user = found
    if row.revoked:
        raise TokenRefused(f"API token {row.prefix}... was revoked (logged out, or by an admin)")
    if row.expires_at <= now:
        raise TokenRefused(f"API token {row.prefix}... expired at {row.expires_at.isoformat()}")
    if user is not None and user.disabled:
        raise TokenRefused(f"API token {row.prefix}... belongs to user {user.username!r}, who is disabled")
    row.last_used_at = now
    if user is not None:
        return Principal(f"user:{user.username}", Role[row.role], row.gateway_id, user.id)
    return Principal(f"token:{row.name}", Role[row.role], row.gateway_id)


def principal_for_token(session: Session, token: str) -> Principal | None:
    """The principal of a valid token (see :func:`check_token`), or None."""
    try:
        return check_token(session, token)
    except TokenRefused:
        return None


def revoke_secret(session: Session, token: str) -> bool:
    """Revoke the token whose secret is ``token`` (a console's logout); whether there is one."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        return False
    row.revoked = True
    return True


def set_user_disabled(session: Session, username: str, disabled: bool) -> tuple[User, int]:
    """Disable (or enable) a user; disabling also revokes every token of theirs, so a stolen one
    stays dead if the user is enabled again. Returns the user and how many tokens were revoked."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise AuthError(f"no user {username!r}")
    user.disabled = disabled
    revoked = 0
    if disabled:
        for row in session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False))
        ):
            row.revoked = True
            revoked += 1
    return user, revoked


def audit_new_token(session: Session, actor: Principal, row: ApiToken) -> None:
    """Record that ``actor`` minted the token ``row`` (never its secret: only its prefix)."""
    audit(
        session,
        actor,
        "token.create",
        row.name,
        role=row.role,
        prefix=row.prefix,
        gateway_id=row.gateway_id,
        expires_at=row.expires_at.isoformat(),
    )


def audit(session: Session, actor: Principal, action: str, target: str, **details: Any) -> None:
    """Record a write in the audit log (in the caller's transaction, so it commits with the write)."""
    session.add(
        AuditEntry(
            at=utcnow(),
            actor=actor.name,
            action=action,
            target=target,
            details=details,
            user_id=actor.user_id,
        )
    )
