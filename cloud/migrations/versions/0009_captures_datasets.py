"""captures and datasets, capture blobs, gateway tokens

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("line", sa.String(length=128), nullable=False),
        sa.Column("station", sa.String(length=128), nullable=True),
        sa.Column("slot", sa.String(length=128), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_frames", sa.Integer(), nullable=False),
        sa.Column("max_bytes", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.JSON(), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_datasets_requested_at_id", "datasets", ["requested_at", "id"], unique=False)
    op.create_index("ix_datasets_line_requested_at", "datasets", ["line", "requested_at"], unique=False)
    op.create_index("ix_datasets_gateway_status", "datasets", ["gateway_id", "status"], unique=False)
    op.create_table(
        "dataset_files",
        sa.Column("dataset_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("frame", sa.String(length=256), nullable=False),
        sa.Column("model_label", sa.String(length=128), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("label", sa.String(length=128), nullable=True),
        sa.Column("labelled_by", sa.String(length=128), nullable=True),
        sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dataset_id", "name"),
    )
    op.create_index("ix_dataset_files_sha256", "dataset_files", ["sha256"], unique=False)
    op.create_table(
        "capture_blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("received_bytes", sa.BigInteger(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "capture_orders",
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("gateway_id"),
    )
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("gateway_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("gateway_id")
    op.drop_table("capture_orders")
    op.drop_table("capture_blobs")
    op.drop_index("ix_dataset_files_sha256", table_name="dataset_files")
    op.drop_table("dataset_files")
    op.drop_index("ix_datasets_gateway_status", table_name="datasets")
    op.drop_index("ix_datasets_line_requested_at", table_name="datasets")
    op.drop_index("ix_datasets_requested_at_id", table_name="datasets")
    op.drop_table("datasets")
