"""Recent defects of a line and their thumbnails, for the console's gallery."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy import select

from cloud.alerts.schemas import CropGeometry, DefectPublic
from cloud.api.auth import Viewer
from cloud.api.deps import SessionDep
from cloud.db.models import Result, Thumbnail
from cloud.dispositions.schemas import DispositionBrief
from cloud.dispositions.service import flagged

router = APIRouter(tags=["defects"])
MAX_LIMIT = 500


@router.get(
    "/results/{result_id}/thumbnail",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The JPEG crop"},
        404: {"description": "The result has no thumbnail"},
    },
)
def get_thumbnail(result_id: UUID, session: SessionDep, who: Viewer) -> Response:
    """The JPEG crop of a flagged result; 404 if it has none (not flagged, rate-limited, expired)."""
    jpeg = session.scalar(select(Thumbnail.jpeg).where(Thumbnail.result_id == result_id))
    if jpeg is None:
        raise HTTPException(404, detail=f"result {result_id} has no thumbnail")
    # Immutable: a result's thumbnail never changes, so browsers may keep it.
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@router.get("/lines/{line}/defects")
def list_defects(
    line: str,
    session: SessionDep,
    who: Viewer,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Newest first")] = 50,
) -> list[DefectPublic]:
    """Recent flagged results of ``line`` (defects and damaged parcels), newest capture first."""
    query = (
        select(Result, Thumbnail.crop, Thumbnail.result_id)
        .outerjoin(Thumbnail, Thumbnail.result_id == Result.id)
        .where(Result.line == line, flagged())
        .order_by(Result.captured_at.desc(), Result.id.desc())
        .limit(limit)
    )
    out = []
    for result, crop, thumb_id in session.execute(query):
        box = result.output.get("box")
        out.append(
            DefectPublic(
                id=result.id,
                gateway_id=result.gateway_id,
                captured_at=result.captured_at,
                label=result.label,
                score=result.score,
                box=box if isinstance(box, dict) else None,
                model_name=result.model_name,
                model_version=result.model_version,
                has_thumbnail=thumb_id is not None,
                thumbnail_url=f"/api/v1/results/{result.id}/thumbnail" if thumb_id is not None else None,
                crop=CropGeometry.model_validate(crop) if crop else None,
                damaged=bool(result.output.get("damaged")) if result.output.get("kind") == "parcel" else None,
                output=result.output,
                disposition=DispositionBrief.model_validate(result.disposition)
                if result.disposition
                else None,
            )
        )
    return out
