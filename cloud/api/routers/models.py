"""The model registry: upload versions (their files first, as blobs), list, search and inspect."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy import select

from cloud.api.auth import Admin, Viewer
from cloud.api.deps import SessionDep, SettingsDep
from cloud.api.schemas_registry import ModelSummary, VersionCreate, VersionPublic, VersionSummary
from cloud.auth.service import audit
from cloud.db.models import ModelVersion
from cloud.ota.lineage import rollouts_of
from cloud.registry.service import RegistryError, blob_url, create_version, running_on
from cloud.shadow.service import status as shadow_status
from cloud.training.runs import run_of_version
from protocol.messages import version_key

router = APIRouter(prefix="/models", tags=["models"])


@router.post(
    "/versions",
    status_code=201,
    responses={
        200: {"description": "Same content already registered"},
        409: {"description": "Version exists with other content"},
    },
)
def upload_version(
    body: VersionCreate, session: SessionDep, settings: SettingsDep, who: Admin, response: Response
) -> VersionPublic:
    """Register a signed version whose files are uploaded; immutable once created."""
    try:
        row, created = create_version(session, settings, body.manifest, body.signature, body.card, who.name)
    except RegistryError as exc:
        session.rollback()
        raise HTTPException(exc.status, str(exc)) from None
    if created:
        audit(session, who, "model.create", f"{row.name}:{row.version}", sha256=row.sha256)
        session.commit()
    else:
        response.status_code = 200
    return _public(session, settings, row)


@router.get("")
def list_models(
    session: SessionDep,
    _who: Viewer,
    q: str | None = Query(None, description="Name contains"),
    task: str | None = None,
) -> list[ModelSummary]:
    """Models with their versions, by name; ``q`` filters by name, ``task`` by task."""
    query = select(ModelVersion).order_by(ModelVersion.name)
    if q:
        query = query.where(ModelVersion.name.contains(q))
    if task:
        query = query.where(ModelVersion.task == task)
    grouped: dict[str, list[ModelVersion]] = {}
    for row in session.scalars(query):
        grouped.setdefault(row.name, []).append(row)
    out = []
    for name, rows in grouped.items():
        versions = sorted((r.version for r in rows), key=version_key)
        untrusted = [v for v in versions if any(r.version == v and r.signature_warning for r in rows)]
        out.append(
            ModelSummary(
                name=name, task=rows[0].task, versions=versions, latest=versions[-1], untrusted=untrusted
            )
        )
    return out


@router.get("/{name}/versions", responses={404: {"description": "Unknown model"}})
def list_versions(name: str, session: SessionDep, _who: Viewer) -> list[VersionSummary]:
    """Versions of one model, oldest first."""
    rows = session.scalars(select(ModelVersion).where(ModelVersion.name == name)).all()
    if not rows:
        raise HTTPException(404, f"model {name!r} not found")
    return [VersionSummary.model_validate(r) for r in sorted(rows, key=lambda r: version_key(r.version))]


@router.get("/{name}/versions/{version}", responses={404: {"description": "Unknown version"}})
def get_version(
    name: str, version: str, session: SessionDep, settings: SettingsDep, _who: Viewer
) -> VersionPublic:
    """One version with its metrics, card, lineage and the gateways running it."""
    row = session.scalar(
        select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
    )
    if row is None:
        raise HTTPException(404, f"model {name!r} version {version!r} not found")
    return _public(session, settings, row)


def _public(session: SessionDep, settings: SettingsDep, row: ModelVersion) -> VersionPublic:
    out = VersionPublic.model_validate(row)
    return out.model_copy(
        update={
            "metrics": row.manifest.get("metrics") or {},
            "lineage": row.manifest.get("lineage"),
            "artifact_url": blob_url(settings, row.sha256),
            "running_on": running_on(session, row.name, row.version),
            "training_run": run.id if (run := run_of_version(session, row)) is not None else None,
            "dataset_id": (row.manifest.get("lineage") or {}).get("dataset_id"),
            "shadow": shadow_status(session, model=row.name, version=row.version),
            "rollouts": rollouts_of(session, row.name, row.version),
        }
    )
