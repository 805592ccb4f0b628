"""tokens expire; the audit log records the user behind a token

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What tokens made before this revision get, counted from their creation: the lifetimes new
# tokens get by default (cloud/auth/lifetimes.py; copied, a revision never imports app code).
LOGIN_LIFETIME = timedelta(hours=12)
API_TOKEN_LIFETIME = timedelta(days=90)


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("user_id", sa.Integer(), nullable=True))
    op.add_column("api_tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    tokens = sa.table(
        "api_tokens",
        sa.column("id", sa.Integer()),
        sa.column("user_id", sa.Integer()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("expires_at", sa.DateTime(timezone=True)),
    )
    connection = op.get_bind()
    # Logins are the tokens minted for a user; the rest were minted on the server or by an admin.
    rows = connection.execute(sa.select(tokens.c.id, tokens.c.user_id, tokens.c.created_at)).all()
    for token_id, user_id, created_at in rows:
        lifetime = LOGIN_LIFETIME if user_id is not None else API_TOKEN_LIFETIME
        connection.execute(
            tokens.update().where(tokens.c.id == token_id).values(expires_at=created_at + lifetime)
        )
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("user_id")
