"""The demo's well-known accounts, which a production database must never hold.

``factory-sim demo`` makes the users ``admin``, ``operator`` and ``viewer`` with the password
``factory-demo`` and prints them in its banner (``simulators/demo_banner.py``, which cannot import
this package; a test keeps the two lists equal). Anyone who read the README knows them, so the
production profile refuses to start while an enabled user has one of those names or that password,
and refuses to create one.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import User

DEMO_USERNAMES = ("admin", "operator", "viewer")
DEMO_PASSWORD = "factory-demo"  # noqa: S105 - the published demo password this module refuses
_hasher = PasswordHasher()


class DemoAccountError(RuntimeError):
    """Demo credentials where the production profile runs; the message names them and the fix."""


def demo_credentials_problem(username: str, password: str) -> str | None:
    """Why a new production user with these credentials is refused, or None."""
    if username in DEMO_USERNAMES:
        return f"{username!r} is one of the demo's well-known accounts ({', '.join(DEMO_USERNAMES)}); choose another name"
    if password == DEMO_PASSWORD:
        return "that is the demo's published password; choose another"
    return None


def demo_accounts_in(session: Session) -> list[str]:
    """Enabled users that are demo accounts, each with why: ``admin (demo account name)``.

    Checking the password costs one Argon2 verification per enabled user, once at start-up.
    """
    found = []
    for user in session.scalars(select(User).where(User.disabled.is_(False)).order_by(User.username)):
        if user.username in DEMO_USERNAMES:
            found.append(f"{user.username} (demo account name)")
        elif _has_demo_password(user.password_hash):
            found.append(f"{user.username} (demo password)")
    return found


def refuse_demo_accounts(session: Session) -> None:
    """Raise :class:`DemoAccountError` naming every enabled demo account in the database."""
    found = demo_accounts_in(session)
    if found:
        raise DemoAccountError(
            "production profile refuses to start: the database holds the demo's well-known "
            f"accounts: {', '.join(found)}; disable each with 'factory-cloud users disable NAME "
            "--db URL' (and make your own users with other names and passwords)"
        )


def _has_demo_password(password_hash: str) -> bool:
    try:
        return _hasher.verify(password_hash, DEMO_PASSWORD)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
