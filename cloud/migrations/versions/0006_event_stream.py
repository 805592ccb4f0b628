"""events come through the gateway outbox: a unique event id plus stream and seq

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 18:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: rows stored before, and plain events from older agents, have no id, stream or seq.
    op.add_column("events", sa.Column("event_id", sa.Uuid(), nullable=True))
    op.add_column("events", sa.Column("stream", sa.String(length=32), nullable=True))
    op.add_column("events", sa.Column("seq", sa.BigInteger(), nullable=True))
    # Unique on the id makes a re-sent event a no-op (several NULLs are allowed on both dialects).
    op.create_index("ux_events_event_id", "events", ["event_id"], unique=True)
    op.create_index("ix_events_gateway_stream_seq", "events", ["gateway_id", "stream", "seq"])


def downgrade() -> None:
    op.drop_index("ix_events_gateway_stream_seq", table_name="events")
    op.drop_index("ux_events_event_id", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("seq")
        batch.drop_column("stream")
        batch.drop_column("event_id")
