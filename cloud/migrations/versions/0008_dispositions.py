"""operators' dispositions of flagged results

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One row per result (its current disposition); the history of changes is the audit log's.
    op.create_table(
        "dispositions",
        sa.Column("result_id", sa.Uuid(), nullable=False),
        sa.Column("line", sa.String(length=128), nullable=False),
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("task", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disposition", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["result_id"], ["results.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("result_id"),
    )
    op.create_index("ix_dispositions_at_result_id", "dispositions", ["at", "result_id"], unique=False)
    op.create_index("ix_dispositions_line_at", "dispositions", ["line", "at"], unique=False)
    op.create_index("ix_dispositions_line_captured_at", "dispositions", ["line", "captured_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_dispositions_line_captured_at", table_name="dispositions")
    op.drop_index("ix_dispositions_line_at", table_name="dispositions")
    op.drop_index("ix_dispositions_at_result_id", table_name="dispositions")
    op.drop_table("dispositions")
