"""Migration 0010 gives the tokens made before it a lifetime: a login's 12 hours, 90 days for the
rest, counted from when each was made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from cloud.db import make_engine, migrate

MADE = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def test_tokens_made_before_expiry_existed_get_the_default_lifetimes(db_url: str) -> None:
    migrate(db_url, "0009")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO users (id, username, password_hash, role, created_at, disabled) "
                    "VALUES (1, 'ana', 'x', 'operator', :at, false)"
                ),
                {"at": MADE},
            )
            for token_id, user_id in ((1, 1), (2, None)):
                conn.execute(
                    sa.text(
                        "INSERT INTO api_tokens (id, token_hash, prefix, name, role, user_id, created_at, "
                        "revoked) VALUES (:id, :hash, 'fe_x', 't', 'operator', :user, :at, false)"
                    ),
                    {"id": token_id, "hash": f"{token_id:064x}", "user": user_id, "at": MADE},
                )
        migrate(db_url)
        with engine.connect() as conn:
            expiry = {
                row[0]: row[1] for row in conn.execute(sa.text("SELECT id, expires_at FROM api_tokens"))
            }
            nullable = {c["name"]: c["nullable"] for c in sa.inspect(conn).get_columns("api_tokens")}
    finally:
        engine.dispose()
    # SQLite hands back the stored text, in UTC without a zone; PostgreSQL an aware datetime.
    as_utc = {k: _utc(datetime.fromisoformat(str(v))) for k, v in expiry.items()}
    assert as_utc == {1: MADE + timedelta(hours=12), 2: MADE + timedelta(days=90)}
    assert nullable["expires_at"] is False


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
