"""alert rules can be disabled

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 15:05:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rules stay active: the server default fills the new column.
    op.add_column(
        "alert_rules", sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False)
    )


def downgrade() -> None:
    with op.batch_alter_table("alert_rules") as batch:
        batch.drop_column("enabled")
