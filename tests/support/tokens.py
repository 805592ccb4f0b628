"""API tokens for the cloud tests: one per role straight into the database, and their header."""

from __future__ import annotations

from cloud.auth.service import PERSON_ROLES, create_token
from cloud.db import make_engine, make_sessionmaker, migrate


def mint_tokens(db_url: str) -> dict[str, str]:
    """One token per role, straight into the database: {'viewer': ..., 'operator': ..., 'admin': ...}."""
    migrate(db_url)
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            return {role.name: create_token(session, f"test-{role.name}", role)[1] for role in PERSON_ROLES}
    finally:
        engine.dispose()


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of ``token``."""
    return {"Authorization": f"Bearer {token}"}
