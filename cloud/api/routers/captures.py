"""Captures: operators start them on gateways; gateways upload the frames and register them.

Starting a capture stores a ``requested`` row per gateway and publishes the gateway's retained
capture orders (``cloud/datasets/orders.py``). The gateway uploads each frame content-addressed
and resumable (``PUT /captures/files/{sha256}`` at an offset, ``.../status`` for where to resume;
a file the cloud holds is never sent again), then registers the capture's manifest. Uploads and
registration take a gateway's own token (``factory-cloud tokens create --role gateway --gateway
ID``), which may do nothing else, or an admin's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from sqlalchemy.orm import Session, sessionmaker

from cloud.api.auth import CaptureUploader, Operator, Viewer
from cloud.api.deps import SessionDep
from cloud.api.params import MAX_OFFSET
from cloud.api.schemas_registry import BlobStatusPublic
from cloud.auth.service import audit
from cloud.datasets import orders, service
from cloud.datasets.files import capture_store
from cloud.datasets.listing import dataset_page, public
from cloud.datasets.schemas import CaptureStart, DatasetPage, DatasetPublic
from cloud.db.dataset_models import CaptureBlob
from cloud.registry.service import RegistryError, blob_status, put_chunk
from cloud.request_body import read_chunk
from protocol.captures import CaptureManifest, CaptureOrders

router = APIRouter(tags=["captures"])
Sha = Path(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file, lower-case hex")
MAX_CHUNK = 16 << 20
MAX_FILE_BYTES = 64 << 20


def _publish(request: Request, documents: list[CaptureOrders]) -> bool:
    sessions: sessionmaker[Session] = request.app.state.sessions
    publisher: orders.OrdersPublisher = request.app.state.orders_publisher()
    return orders.publish(sessions, publisher, documents)


def _refused(session: Session, exc: service.DatasetError | RegistryError) -> HTTPException:
    session.rollback()
    return HTTPException(exc.status, str(exc))


@router.post("/captures", status_code=201, responses={422: {"description": "No such line, gateway or slot"}})
def start_capture(
    body: CaptureStart, request: Request, session: SessionDep, who: Operator, response: Response
) -> list[DatasetPublic]:
    """Capture the next ``frames`` frames of ``slot`` on one gateway or every gateway of a line that
    has it (operator or admin; audited). The order reaches a gateway offline now when it returns.

    The answer lists one capture per gateway. Should the broker not take the orders, the answer is
    still 201 with the header ``X-Orders-Published: false``: the captures are stored and the
    Celery worker publishes them again.
    """
    try:
        rows = service.start_captures(session, body, who)
    except service.DatasetError as exc:
        raise _refused(session, exc) from None
    for row in rows:
        audit(
            session, who, "capture.start", row.id, gateway_id=row.gateway_id, **body.model_dump(mode="json")
        )
    documents = orders.stage_orders(session, [r.gateway_id for r in rows])
    session.commit()
    response.headers["X-Orders-Published"] = "true" if _publish(request, documents) else "false"
    return [public(row, {}) for row in rows]


@router.get("/captures")
def list_captures(
    session: SessionDep,
    who: Viewer,
    line: Annotated[str | None, Query(description="Only this line")] = None,
    gateway: Annotated[str | None, Query(description="Only this gateway")] = None,
    status: Annotated[str | None, Query(description="requested, complete, stopped or refused")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> DatasetPage:
    """Captures, newest first: requested ones and what each gateway registered."""
    statuses = (status,) if status else None
    return dataset_page(session, line=line, gateway=gateway, statuses=statuses, offset=offset, limit=limit)


@router.get("/captures/{capture_id}", responses={404: {"description": "Unknown capture"}})
def get_capture(capture_id: str, session: SessionDep, who: Viewer) -> DatasetPublic:
    """One capture: what was asked, and how far the gateway got."""
    try:
        row = service.get_dataset(session, capture_id)
    except service.DatasetError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return public(row, service.label_counts(session, [row.id])[row.id])


@router.get("/captures/files/{sha256}/status", responses={404: {"description": "Upload never started"}})
def file_status(
    request: Request, session: SessionDep, who: CaptureUploader, sha256: str = Sha
) -> BlobStatusPublic:
    """How many bytes of a capture file the cloud holds: where a resumed upload continues."""
    status = blob_status(session, capture_store(request), sha256, CaptureBlob)
    if status is None:
        raise HTTPException(404, f"no upload of {sha256}")
    return BlobStatusPublic.model_validate(status, from_attributes=True)


@router.put(
    "/captures/files/{sha256}",
    responses={
        409: {"description": "Wrong offset"},
        413: {"description": "A file over 64 MiB, or a chunk over 16 MiB or past the file's end"},
        422: {"description": "Bytes do not hash right"},
    },
)
async def put_file(
    request: Request,
    session: SessionDep,
    who: CaptureUploader,
    sha256: str = Sha,
    size: int = Query(ge=1, description="Total size of the file, bytes"),
    offset: int = Query(0, ge=0, description="Where this chunk starts; must equal the bytes held"),
) -> BlobStatusPublic:
    """Append the body at ``offset``; the file completes (its hash checked) with its last byte. A
    file already held answers complete at once, whatever was sent. A file over 64 MiB is no camera
    frame (413); the body is read no further than the chunk limit or the file's declared end."""
    if size > MAX_FILE_BYTES:
        raise HTTPException(413, f"file of {size} bytes is over the {MAX_FILE_BYTES}-byte limit of a frame")
    data = await read_chunk(request, size, offset, MAX_CHUNK)
    try:
        status = put_chunk(session, capture_store(request), sha256, size, offset, data, CaptureBlob)
    except RegistryError as exc:
        raise _refused(session, exc) from None
    session.commit()
    return BlobStatusPublic.model_validate(status, from_attributes=True)


@router.put(
    "/captures/{capture_id}/manifest",
    status_code=201,
    responses={
        200: {"description": "Registered before with the same content"},
        403: {"description": "A gateway token of another gateway"},
        409: {"description": "Registered before with other content, or another gateway's capture"},
        422: {"description": "A file is not uploaded yet"},
    },
)
def register_capture(
    capture_id: str,
    manifest: CaptureManifest,
    request: Request,
    session: SessionDep,
    who: CaptureUploader,
    response: Response,
) -> DatasetPublic:
    """Register what a gateway captured, once every file is uploaded: the capture becomes a dataset
    (idempotent: the same manifest again answers 200 and changes nothing)."""
    if manifest.capture_id != capture_id:
        raise HTTPException(422, f"manifest is of capture {manifest.capture_id}, the path names {capture_id}")
    try:
        row, created = service.register_capture(session, capture_store(request), manifest, who)
    except service.DatasetError as exc:
        raise _refused(session, exc) from None
    if not created:
        response.status_code = 200
        return public(row, service.label_counts(session, [row.id])[row.id])
    audit(
        session, who, "capture.register", row.id, status=row.status, frames=row.frames, bytes=row.total_bytes
    )
    documents = orders.stage_orders(session, [row.gateway_id])  # the order leaves the gateway's list
    session.commit()
    _publish(request, documents)
    return public(row, service.label_counts(session, [row.id])[row.id])
