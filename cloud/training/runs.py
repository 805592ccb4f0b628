"""Training runs: record a request (checking the dataset can teach a model), pick the candidate's
name and version, and read runs back with their lineage.

A request the dataset cannot satisfy (no such dataset, no frames, too few good ones) is still
recorded, as a failed run with the reason: the console and ``factoryctl teach`` show the same run
view either way, and the audit of who asked for what stays complete.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.auth.service import Principal
from cloud.datasets.service import HOLDING_DATA, label_counts
from cloud.db.dataset_models import Dataset, DatasetFile
from cloud.db.models import ModelVersion
from cloud.db.training_models import TrainingRun
from cloud.registry.service import running_on
from cloud.training.schemas import TeachParameters, TrainingRunDetail, TrainingRunPage, TrainingRunPublic
from protocol.dataset_layout import mvtec_layout, shortfall
from protocol.inference import MAP_OUTPUT
from protocol.messages import utcnow, version_key

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
ACTIVE = (QUEUED, RUNNING)
# The trainer's default name: what `factory-models train defect` calls a model unless told.
DEFAULT_MODEL = "defect-patchcore"
FIRST_VERSION = "1.0.0"
_VERSION_ATTEMPTS = 5


class RunError(ValueError):
    """A request about training runs the service refuses; ``status`` is the HTTP status that fits."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def why_not_teachable(session: Session, dataset_id: str) -> str | None:
    """Why ``dataset_id`` cannot teach a model now (in words that say what to do), or None."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        return f"no capture or dataset {dataset_id}"
    if dataset.status not in HOLDING_DATA:
        return f"dataset {dataset_id} is {dataset.status}: it holds no frames to teach from"
    files = session.scalars(select(DatasetFile).where(DatasetFile.dataset_id == dataset_id)).all()
    if not files:
        return f"dataset {dataset_id} holds no frames to teach from"
    placed = mvtec_layout(
        [{"name": f.name, "sha256": f.sha256, "label": f.label} for f in files], dataset.label
    )
    return shortfall(placed)


def _is_anomaly_model(session: Session, name: str) -> bool:
    manifests = session.scalars(select(ModelVersion.manifest).where(ModelVersion.name == name)).all()
    return any(MAP_OUTPUT in {o.get("name") for o in m.get("outputs") or ()} for m in manifests)


def candidate_name(session: Session, dataset: Dataset | None, asked: str | None) -> str:
    """The name asked for, else the dataset's model when it is an anomaly model (the candidate
    replaces it), else the trainer's default: a CNN's slot is not given a PatchCore of its name."""
    if asked:
        return asked
    model = (dataset.model or {}) if dataset is not None else {}
    name = model.get("name")
    if isinstance(name, str) and _is_anomaly_model(session, name):
        return name
    return DEFAULT_MODEL


def next_version(session: Session, name: str, serving: str | None = None) -> str:
    """The next patch version after the newest of ``name`` the registry holds, a run reserved, or
    the gateway serves (``serving``: the version of the dataset's model, when it is ``name``).

    Versions are plain MAJOR.MINOR.PATCH (no pre-release suffix in protocol.messages.VersionStr),
    and immutable in the registry: a candidate takes the next patch, and reserves it on its run,
    so a second run before the first is pushed never writes the same version with other weights.
    A gateway installs only rising versions per slot, so a candidate must also be above the one
    it replaces, which a bundled model that never went through the registry would not be.
    """
    taken = set(session.scalars(select(ModelVersion.version).where(ModelVersion.name == name)))
    if serving is not None:
        taken.add(serving)
    taken |= {
        v
        for v in session.scalars(select(TrainingRun.model_version).where(TrainingRun.model_name == name))
        if v
    }
    if not taken:
        return FIRST_VERSION
    major, minor, patch = max(version_key(v) for v in taken)
    return f"{major}.{minor}.{patch + 1}"


def request_run(session: Session, dataset_id: str, params: TeachParameters, who: Principal) -> TrainingRun:
    """Record a run of ``dataset_id``: ``queued`` when the dataset can teach a model, else
    ``failed`` with the reason. 409 while another run of the dataset is queued or running."""
    busy = session.scalar(
        select(TrainingRun.id).where(TrainingRun.dataset_id == dataset_id, TrainingRun.status.in_(ACTIVE))
    )
    if busy is not None:
        raise RunError(409, f"training run {busy} of dataset {dataset_id} is still queued or running")
    now = utcnow()
    run = TrainingRun(
        dataset_id=dataset_id,
        status=QUEUED,
        requested_by=who.name,
        created_at=now,
        seed=params.seed,
        parameters=params.model_dump(exclude={"dataset_id"}),
        signed=False,
    )
    reason = why_not_teachable(session, dataset_id)
    if reason is not None:
        run.status, run.error, run.finished_at = FAILED, reason, now
        session.add(run)
        session.flush()
        return run
    dataset = session.get(Dataset, dataset_id)
    name = candidate_name(session, dataset, params.model_name)
    model = (dataset.model if dataset is not None else None) or {}
    serving = str(model["version"]) if model.get("name") == name and model.get("version") else None
    for _attempt in range(_VERSION_ATTEMPTS):
        run.model_name, run.model_version = name, next_version(session, name, serving)
        try:
            with session.begin_nested():  # another request may take the same version meanwhile
                session.add(run)
                session.flush()
        except IntegrityError:
            continue  # the savepoint's rollback took the pending run out again: retry with the next
        return run
    raise RunError(409, f"could not reserve a version of {name}: other runs keep taking them; try again")


def get_run(session: Session, run_id: int) -> TrainingRun:
    """Run ``run_id``; 404 naming it otherwise."""
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise RunError(404, f"training run {run_id} not found")
    return run


def registered_version(session: Session, run: TrainingRun) -> ModelVersion | None:
    """The registry's version the run made (same name, version and artifact), if registered."""
    if run.model_name is None or run.artifact_sha256 is None:
        return None
    return session.scalar(
        select(ModelVersion).where(
            ModelVersion.name == run.model_name,
            ModelVersion.version == run.model_version,
            ModelVersion.sha256 == run.artifact_sha256,
        )
    )


def run_of_version(session: Session, version: ModelVersion) -> TrainingRun | None:
    """The run that made ``version`` (its lineage), if it was taught in the cloud."""
    return session.scalar(
        select(TrainingRun).where(
            TrainingRun.model_name == version.name,
            TrainingRun.model_version == version.version,
            TrainingRun.artifact_sha256 == version.sha256,
        )
    )


def public(session: Session, run: TrainingRun) -> TrainingRunPublic:
    """A run as the API shows it in a list."""
    registered = registered_version(session, run) is not None
    return TrainingRunPublic.model_validate(
        {
            **{name: getattr(run, name) for name in _COLUMNS},
            "registered": registered,
            "awaiting_signature": run.status == SUCCEEDED and not registered,
        }
    )


_COLUMNS = tuple(
    name for name in TrainingRunPublic.model_fields if name not in ("registered", "awaiting_signature")
)


def detail(session: Session, run: TrainingRun, push_commands: list[str]) -> TrainingRunDetail:
    """A run with its lineage: the dataset it was fit on and the gateways running what it made."""
    shown = public(session, run)
    dataset = session.get(Dataset, run.dataset_id)
    facts: dict[str, Any] | None = None
    if dataset is not None:
        facts = {
            "id": dataset.id,
            "line": dataset.line,
            "gateway_id": dataset.gateway_id,
            "slot": dataset.slot,
            "frames": dataset.frames,
            "label": dataset.label,
            "model": dataset.model,
            "labels": label_counts(session, [dataset.id])[dataset.id],
        }
    gateways = (
        running_on(session, run.model_name, run.model_version)
        if shown.registered and run.model_name and run.model_version
        else []
    )
    return TrainingRunDetail.model_validate(
        {
            **shown.model_dump(),
            "dataset": facts,
            "running_on": gateways,
            "push_commands": push_commands if shown.awaiting_signature else [],
        }
    )


def run_page(
    session: Session, *, dataset_id: str | None, status: str | None, offset: int, limit: int
) -> TrainingRunPage:
    """Runs newest first, optionally of one dataset or one status."""
    query = select(TrainingRun).order_by(TrainingRun.created_at.desc(), TrainingRun.id.desc())
    if dataset_id is not None:
        query = query.where(TrainingRun.dataset_id == dataset_id)
    if status is not None:
        query = query.where(TrainingRun.status == status)
    rows = list(session.scalars(query.offset(offset).limit(limit + 1)))
    return TrainingRunPage(
        items=[public(session, r) for r in rows[:limit]],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if len(rows) > limit else None,
    )


def push_commands(run: TrainingRun) -> list[str]:
    """How an engineer signs and pushes a candidate the cloud did not sign (shell lines)."""
    if run.model_name is None or run.model_version is None:
        return []
    folder = f"run-{run.id}"
    stem = f"{folder}/{run.model_name}-{run.model_version}"
    return [
        f"factoryctl runs download {run.id} --out {folder}",
        f"# fill in the lines of {folder}/MODEL_CARD.md marked '(to fill in)', then:",
        f"factoryctl models push {stem}.onnx --manifest {stem}.manifest.json --key me.pem "
        f"--card {folder}/MODEL_CARD.md",
    ]
