"""Datasets: the captures that hold frames, their files (downloads) and the operators' labels."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from cloud.api.auth import Operator, Viewer
from cloud.api.deps import SessionDep
from cloud.api.params import MAX_OFFSET
from cloud.auth.service import audit
from cloud.datasets import service
from cloud.datasets.files import capture_store
from cloud.datasets.listing import dataset_detail, dataset_page
from cloud.datasets.schemas import LIST_LIMIT, DatasetDetail, DatasetPage, LabelsApplied, LabelsUpdate
from cloud.db.dataset_models import DatasetFile

router = APIRouter(tags=["datasets"])


@router.get("/datasets")
def list_datasets(
    session: SessionDep,
    who: Viewer,
    line: Annotated[str | None, Query(description="Only this line")] = None,
    gateway: Annotated[str | None, Query(description="Only this gateway")] = None,
    limit: Annotated[int, Query(ge=1, le=LIST_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> DatasetPage:
    """Captures that hold frames (complete, or stopped with fewer), newest first."""
    return dataset_page(
        session, line=line, gateway=gateway, statuses=service.HOLDING_DATA, offset=offset, limit=limit
    )


@router.get("/datasets/{dataset_id}", responses={404: {"description": "Unknown dataset"}})
def get_dataset(
    dataset_id: str,
    session: SessionDep,
    who: Viewer,
    files_offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    files_limit: Annotated[int, Query(ge=1, le=LIST_LIMIT)] = 100,
    file_label: Annotated[
        str | None, Query(description="Only files of this label ('unlabelled': without one)")
    ] = None,
) -> DatasetDetail:
    """One dataset: its facts, files per label, and one page of its files in capture order."""
    try:
        row = service.get_dataset(session, dataset_id)
    except service.DatasetError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return dataset_detail(session, row, files_offset, files_limit, file_label)


@router.get(
    "/datasets/{dataset_id}/files/{name}",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/png": {}}}, 404: {"description": "No such file"}},
)
def download_file(
    dataset_id: str, name: str, request: Request, session: SessionDep, who: Viewer
) -> StreamingResponse:
    """A frame's PNG bytes (its SHA-256 is the ETag)."""
    row = session.scalar(
        select(DatasetFile).where(DatasetFile.dataset_id == dataset_id, DatasetFile.name == name)
    )
    if row is None:
        raise HTTPException(404, f"dataset {dataset_id} has no file {name}")
    body: Iterator[bytes] = capture_store(request).read(row.sha256, 0, row.size_bytes - 1)
    headers = {"Content-Length": str(row.size_bytes), "ETag": f'"{row.sha256}"'}
    return StreamingResponse(body, headers=headers, media_type="image/png")


@router.put(
    "/datasets/{dataset_id}/labels",
    responses={404: {"description": "Unknown dataset"}, 422: {"description": "Unknown file or label"}},
)
def put_labels(dataset_id: str, body: LabelsUpdate, session: SessionDep, who: Operator) -> LabelsApplied:
    """Label many files at once (operator or admin): good, skip, a defect kind, or null to clear.

    All or nothing: a file the dataset lacks refuses the whole call. One audit entry per call says
    who set which file from what to what (``dataset.label``).
    """
    try:
        row = service.get_dataset(session, dataset_id)
        changed, changes = service.apply_labels(session, row, body.labels, who)
    except service.DatasetError as exc:
        session.rollback()
        raise HTTPException(exc.status, str(exc)) from None
    if changed:
        audit(session, who, "dataset.label", dataset_id, changed=changed, files=changes)
    session.commit()
    return LabelsApplied(
        dataset_id=dataset_id, changed=changed, labels=service.label_counts(session, [dataset_id])[dataset_id]
    )
