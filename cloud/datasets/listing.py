"""Captures and datasets as the API shows them: pages newest first, one dataset with a page of files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cloud.datasets.schemas import DatasetDetail, DatasetFilePublic, DatasetPage, DatasetPublic
from cloud.datasets.service import UNLABELLED, label_counts
from cloud.db.dataset_models import Dataset, DatasetFile

T = TypeVar("T")


def _slice(session: Session, query: Select[T], offset: int, limit: int) -> tuple[list[T], bool]:
    # One row beyond the page says whether another follows, without a count(*).
    rows = list(session.scalars(query.offset(offset).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def public(row: Dataset, labels: dict[str, int]) -> DatasetPublic:
    """One capture with its files per label."""
    return DatasetPublic.model_validate({**_columns(row), "labels": labels})


def _columns(row: Dataset) -> dict[str, object]:
    return {name: getattr(row, name) for name in DatasetPublic.model_fields if name != "labels"}


def dataset_page(
    session: Session,
    *,
    line: str | None,
    gateway: str | None,
    statuses: Sequence[str] | None,
    offset: int,
    limit: int,
) -> DatasetPage:
    """Captures newest first (by request time), optionally of one line, gateway or statuses."""
    query = select(Dataset).order_by(Dataset.requested_at.desc(), Dataset.id.desc())
    if line is not None:
        query = query.where(Dataset.line == line)
    if gateway is not None:
        query = query.where(Dataset.gateway_id == gateway)
    if statuses is not None:
        query = query.where(Dataset.status.in_(statuses))
    rows, more = _slice(session, query, offset, limit)
    counts = label_counts(session, [r.id for r in rows])
    return DatasetPage(
        items=[public(r, counts[r.id]) for r in rows],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
    )


def dataset_detail(
    session: Session, row: Dataset, files_offset: int, files_limit: int, file_label: str | None
) -> DatasetDetail:
    """``row`` with one page of its files in name order, optionally only those of one label
    (``unlabelled``: those without a label of their own)."""
    query = select(DatasetFile).where(DatasetFile.dataset_id == row.id).order_by(DatasetFile.name)
    if file_label == UNLABELLED:
        query = query.where(DatasetFile.label.is_(None))
    elif file_label is not None:
        query = query.where(DatasetFile.label == file_label)
    files, more = _slice(session, query, files_offset, files_limit)
    return DatasetDetail.model_validate(
        {
            **_columns(row),
            "labels": label_counts(session, [row.id])[row.id],
            "files": [DatasetFilePublic.model_validate(f) for f in files],
            "files_offset": files_offset,
            "files_limit": files_limit,
            "files_next_offset": files_offset + files_limit if more else None,
        }
    )
