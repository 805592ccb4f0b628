"""ORM models of captures and datasets (migration 0009), beside ``models.py`` on the same metadata.

A capture the cloud asked for and the dataset it becomes are one row of ``datasets``: created as
``requested`` when an operator starts it, filled in from the gateway's manifest when the gateway
registers it. A capture a gateway started by itself (on drift) first appears at registration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.models import GATEWAY_ID_LEN, NAME_LEN, Base

CAPTURE_ID_LEN = 40  # protocol.captures.CaptureId: "cap-" and up to 32 hex


class Dataset(Base):
    """A capture: requested by an operator, then the frames a gateway registered for it."""

    __tablename__ = "datasets"
    __table_args__ = (
        # Lists page newest first by (requested_at, id), optionally of one line or gateway.
        Index("ix_datasets_requested_at_id", "requested_at", "id"),
        Index("ix_datasets_line_requested_at", "line", "requested_at"),
        # Each gateway's open orders (status 'requested') make up its retained orders document.
        Index("ix_datasets_gateway_status", "gateway_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(CAPTURE_ID_LEN), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(GATEWAY_ID_LEN))
    line: Mapped[str] = mapped_column(String(NAME_LEN))
    station: Mapped[str | None] = mapped_column(String(NAME_LEN))
    slot: Mapped[str] = mapped_column(String(NAME_LEN))
    origin: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(NAME_LEN))
    note: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(NAME_LEN))
    requested_at: Mapped[datetime]
    requested_frames: Mapped[int] = mapped_column(Integer)
    max_bytes: Mapped[int] = mapped_column(BigInteger)
    # requested, then what the gateway says: complete, stopped or refused.
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    frames: Mapped[int] = mapped_column(Integer, default=0)
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    model: Mapped[dict[str, Any] | None]
    registered_at: Mapped[datetime | None]
    # SHA-256 of the registered manifest: the same registration again is a no-op, another a 409.
    fingerprint: Mapped[str | None] = mapped_column(String(64))


class DatasetFile(Base):
    """One frame of a dataset: its hash (the bytes live in the capture store) and its label."""

    __tablename__ = "dataset_files"
    __table_args__ = (Index("ix_dataset_files_sha256", "sha256"),)

    dataset_id: Mapped[str] = mapped_column(
        String(CAPTURE_ID_LEN), ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    captured_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(NAME_LEN))
    frame: Mapped[str] = mapped_column(String(256))
    model_label: Mapped[str | None] = mapped_column(String(NAME_LEN))
    score: Mapped[float | None]
    # good, skip or a defect kind; who set it and when (the audit log keeps every change).
    label: Mapped[str | None] = mapped_column(String(NAME_LEN))
    labelled_by: Mapped[str | None] = mapped_column(String(NAME_LEN))
    labelled_at: Mapped[datetime | None]


class CaptureBlob(Base):
    """A content-addressed capture file in the capture store; ``complete`` once its bytes hash right.

    Kept apart from model blobs (``blobs``): those are downloadable by hash without a token,
    frames of a plant's parts are not.
    """

    __tablename__ = "capture_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    received_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    complete: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class CaptureOrdersState(Base):
    """Per gateway: the revision of its retained capture orders and whether it reached the broker."""

    __tablename__ = "capture_orders"

    gateway_id: Mapped[str] = mapped_column(String(GATEWAY_ID_LEN), primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger)
    published: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime]
