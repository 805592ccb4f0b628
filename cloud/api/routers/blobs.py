"""Content-addressed file uploads (resumable) and downloads (HTTP Range) for model artifacts.

Downloads are public by hash: a gateway needs the 64-hex SHA-256 from its signed desired state
to ask for a file, and it verifies the bytes against that hash and the manifest's Ed25519
signature before using them, so a tampered or substituted file is refused whatever the
transport did. What this does not protect is the secrecy of model weights from someone who
learns a hash; a plant that needs that puts the API behind its gateway network's TLS/VPN.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from cloud.api.auth import Admin
from cloud.api.deps import SessionDep, SettingsDep
from cloud.api.schemas_registry import BlobStatusPublic
from cloud.auth.service import audit
from cloud.db.models import Blob
from cloud.registry.service import RegistryError, blob_status, put_chunk
from cloud.registry.store import ArtifactStore
from cloud.request_body import read_chunk

router = APIRouter(prefix="/blobs", tags=["blobs"])
Sha = Path(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file, lower-case hex")
MAX_CHUNK = 64 << 20
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _store(request: Request) -> ArtifactStore:
    store: ArtifactStore = request.app.state.store
    return store


@router.get("/{sha256}/status", responses={404: {"description": "Upload never started"}})
def get_status(sha256: str, request: Request, session: SessionDep, _who: Admin) -> BlobStatusPublic:
    """How many bytes of an upload the server holds: where a resumed upload continues."""
    status = blob_status(session, _store(request), sha256)
    if status is None:
        raise HTTPException(404, f"no upload of {sha256}")
    return BlobStatusPublic.model_validate(status, from_attributes=True)


@router.put(
    "/{sha256}",
    responses={
        409: {"description": "Wrong offset"},
        413: {"description": "File over max_artifact_bytes, or a chunk over 64 MiB or past the file's end"},
        422: {"description": "Bad content"},
    },
)
async def put_blob(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: Admin,
    sha256: str = Sha,
    size: int = Query(ge=1, description="Total size of the file, bytes"),
    offset: int = Query(0, ge=0, description="Where this chunk starts; must equal the bytes held"),
) -> BlobStatusPublic:
    """Append the request body at ``offset``; the file completes when its last byte arrives.

    The body is refused (413) before it is read when the file is over ``max_artifact_bytes``, and
    read no further than the chunk limit or the file's declared end, whichever comes first."""
    if size > settings.max_artifact_bytes:
        raise HTTPException(
            413, f"file of {size} bytes is over the registry's limit of {settings.max_artifact_bytes} bytes"
        )
    data = await read_chunk(request, size, offset, MAX_CHUNK)
    try:
        status = put_chunk(session, _store(request), sha256, size, offset, data)
    except RegistryError as exc:
        session.rollback()
        raise HTTPException(exc.status, str(exc)) from None
    if status.complete:
        audit(session, who, "blob.upload", sha256, size=size)
    session.commit()
    return BlobStatusPublic.model_validate(status, from_attributes=True)


@router.get(
    "/{sha256}",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file"},
        206: {"content": {"application/octet-stream": {}}, "description": "Partial content"},
        404: {"description": "No complete file with this hash"},
        416: {"description": "Bad range"},
    },
)
def download(request: Request, session: SessionDep, sha256: str = Sha) -> Response:
    """The file's bytes; honours ``Range: bytes=a-b`` so gateways resume interrupted downloads."""
    row = session.get(Blob, sha256)
    if row is None or not row.complete:
        raise HTTPException(404, f"no file {sha256}")
    size = row.size_bytes
    start, end, status = 0, size - 1, 200
    header = request.headers.get("range")
    if header:
        match = _RANGE.match(header.strip())
        if not match or match.groups() == ("", ""):
            raise HTTPException(416, f"unsupported Range {header!r}; use bytes=START-[END]")
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        else:
            start, end = max(size - int(last), 0), size - 1
        if start >= size or start > end:
            raise HTTPException(
                416,
                f"range {header!r} is outside the {size}-byte file",
                headers={"Content-Range": f"bytes */{size}"},
            )
        status = 206
    body: Iterator[bytes] = _store(request).read(sha256, start, end)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1), "ETag": f'"{sha256}"'}
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(body, status_code=status, headers=headers, media_type="application/octet-stream")
