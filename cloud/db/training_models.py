"""ORM model of training runs (migration 0011), beside ``models.py`` on the same metadata.

A run is one "teach the new normal" request: a dataset fit into a candidate model by the Celery
worker. It keeps what reproduces the fit (code version, seed, parameters), what the fit measured,
the candidate's files (in the training store) and, once registered, the model version it became.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.dataset_models import CAPTURE_ID_LEN
from cloud.db.models import NAME_LEN, Base

RUN_STATUS_LEN = 16


class TrainingRun(Base):
    """One fit of a dataset into a candidate model: queued, running, succeeded or failed."""

    __tablename__ = "training_runs"
    __table_args__ = (
        # A run reserves its version while it lives, so two runs of one model never write the same
        # name and version (versions are immutable in the registry). NULLs do not collide.
        UniqueConstraint("model_name", "model_version", name="uq_training_runs_model"),
        Index("ix_training_runs_created_at", "created_at"),
        Index("ix_training_runs_dataset", "dataset_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # No foreign key: a run of an id that names no dataset is recorded as failed, with the reason.
    dataset_id: Mapped[str] = mapped_column(String(CAPTURE_ID_LEN))
    status: Mapped[str] = mapped_column(String(RUN_STATUS_LEN))
    requested_by: Mapped[str] = mapped_column(String(NAME_LEN))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    code_version: Mapped[str | None] = mapped_column(String(NAME_LEN))
    seed: Mapped[int] = mapped_column(Integer)
    parameters: Mapped[dict[str, Any]]
    figures: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    log_tail: Mapped[str | None] = mapped_column(Text)
    model_name: Mapped[str | None] = mapped_column(String(NAME_LEN))
    model_version: Mapped[str | None] = mapped_column(String(32))
    # The candidate's files: name -> {"sha256", "size_bytes"}, bytes in the training store.
    artifacts: Mapped[dict[str, Any] | None]
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))
    # Set when the cloud signed and registered the candidate itself; else it awaits a signature.
    signed: Mapped[bool] = mapped_column(default=False)
