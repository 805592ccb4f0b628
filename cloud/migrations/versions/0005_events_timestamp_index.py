"""index events by time for the fleet-wide event list

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 16:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # GET /events without a gateway filter reads newest first: without this index it sorts the table.
    op.create_index("ix_events_timestamp_id", "events", ["timestamp", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_timestamp_id", table_name="events")
