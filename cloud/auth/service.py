"""Users (argon2 password hashes), API tokens (stored as SHA-256) and the audit log.

Tokens are 32 random bytes, so a fast hash is enough to store them: nobody can brute-force a
256-bit secret, and a lookup by hash stays one indexed query per request. Passwords are chosen
by people and get a slow, salted KDF (argon2id).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import ApiToken, AuditEntry, User
from protocol.messages import utcnow

TOKEN_PREFIX = "fe_"  # noqa: S105  # a marker that makes leaked tokens greppable, not a secret
_hasher = PasswordHasher()


class Role(IntEnum):
    """Roles in increasing power: each one may do everything the one below may."""

    viewer = 1
    operator = 2
    admin = 3

    @classmethod
    def parse(cls, value: str) -> Role:
        """The role named ``value``; ValueError listing the valid ones otherwise."""
        try:
            return cls[value]
        except KeyError:
            raise ValueError(f"unknown role {value!r} (choose viewer, operator or admin)") from None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a request: a name for the audit log and a role."""

    name: str
    role: Role


class AuthError(ValueError):
    """A user or token that cannot be created; the message says why."""


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


def create_token(session: Session, name: str, role: Role, user: User | None = None) -> tuple[ApiToken, str]:
    """A new API token; returns the row and the secret, which is shown once and never stored."""
    if user is not None and role > Role[user.role]:
        raise AuthError(f"user {user.username!r} is {user.role}; cannot mint a {role.name} token")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        token_hash=hash_token(secret),
        prefix=secret[:10],
        name=name,
        role=role.name,
        user_id=user.id if user else None,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row, secret


def principal_for_token(session: Session, token: str) -> Principal | None:
    """The principal of a valid, unrevoked token, or None."""
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False))
    )
    if row is None:
        return None
    row.last_used_at = utcnow()
    return Principal(f"token:{row.name}", Role[row.role])


def revoke_secret(session: Session, token: str) -> bool:
    """Revoke the token whose secret is ``token`` (a console's logout); whether there is one."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        return False
    row.revoked = True
    return True


def audit(session: Session, actor: Principal, action: str, target: str, **details: Any) -> None:
    """Record a write in the audit log (in the caller's transaction, so it commits with the write)."""
    session.add(AuditEntry(at=utcnow(), actor=actor.name, action=action, target=target, details=details))
