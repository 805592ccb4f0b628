"""gateways report their machine: CPU, ISA features, cores, memory, and the CPU class

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: gateways stay unknown until their next birth from an agent that reports them.
    op.add_column("gateways", sa.Column("machine", sa.JSON(), nullable=True))
    op.add_column("gateways", sa.Column("cpu_class", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gateways") as batch:
        batch.drop_column("cpu_class")
        batch.drop_column("machine")
