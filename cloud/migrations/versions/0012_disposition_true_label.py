"""an operator's label on a result: a note's right category

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-12 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Set by a `labelled` disposition only; the model's own label stays in `label` beside it.
    op.add_column("dispositions", sa.Column("true_label", sa.String(length=128), nullable=True))


def downgrade() -> None:
    op.drop_column("dispositions", "true_label")
