"""Carry out a queued training run: the Celery task ``cloud.training.teach`` is this, called.

queued -> running (taken under a row lock, so a re-delivered task never fits twice) -> the
dataset's frames written as an MVTec folder from the capture store -> the trainer as a process
-> its files kept in the training store -> signed and registered when the cloud holds a key ->
succeeded; or failed with the reason, whatever step refused. The folder is temporary: the
dataset and the run's parameters reproduce it.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from cloud.config import CloudSettings
from cloud.datasets.files import make_capture_store
from cloud.db.dataset_models import Dataset
from cloud.db.training_models import TrainingRun
from cloud.registry.service import RegistryError
from cloud.registry.store import ArtifactStore, StoreError, make_store
from cloud.training.files import (
    dataset_facts,
    keep_file,
    make_training_store,
    placed_files,
    write_training_folder,
)
from cloud.training.release import sign_and_register, stamp
from cloud.training.runs import FAILED, QUEUED, RUNNING, SUCCEEDED, why_not_teachable
from cloud.training.schemas import TeachParameters
from cloud.training.trainer import (
    TIMEOUT_S,
    Candidate,
    TrainerError,
    code_version,
    figures,
    read_candidate,
    run_trainer,
    train_argv,
)
from protocol.messages import utcnow
from protocol.signing import SignatureError

log = logging.getLogger(__name__)
# What a step may refuse with; each becomes the failed run's reason.
_REFUSALS = (ValueError, OSError, StoreError, RegistryError, SignatureError)


@dataclass(frozen=True)
class Stores:
    """The stores a run reads and writes: frames in, candidate files out, model blobs when signed."""

    captures: ArtifactStore
    training: ArtifactStore
    models: ArtifactStore

    @staticmethod
    def of(settings: CloudSettings) -> Stores:
        """The stores ``settings`` name."""
        return Stores(make_capture_store(settings), make_training_store(settings), make_store(settings))


@dataclass(frozen=True)
class _Taken:
    dataset_id: str
    name: str
    version: str
    params: TeachParameters


class _Refused(Exception):
    """A step refused the run; the message is its reason."""


def _take(sessions: sessionmaker[Session], run_id: int) -> _Taken | None:
    with sessions.begin() as session:
        run = session.get(TrainingRun, run_id, with_for_update=True)
        if run is None or run.status != QUEUED:
            log.info("training run %s is %s: nothing to do", run_id, run.status if run else "unknown")
            return None
        run.status, run.started_at, run.code_version = RUNNING, utcnow(), code_version()
        if run.model_name is None or run.model_version is None:
            run.status, run.error, run.finished_at = FAILED, "the run has no model name or version", utcnow()
            return None
        return _Taken(run.dataset_id, run.model_name, run.model_version, TeachParameters(**run.parameters))


def _update(sessions: sessionmaker[Session], run_id: int, **values: Any) -> None:
    with sessions.begin() as session:
        run = session.get(TrainingRun, run_id)
        if run is not None:
            for name, value in values.items():
                setattr(run, name, value)


@dataclass(frozen=True)
class _Folder:
    facts: dict[str, Any]  # what dataset.json says, each placed file included
    parent_version: str | None  # the version of the dataset's model, when the candidate replaces it


def _write_folder(
    sessions: sessionmaker[Session], captures: ArtifactStore, taken: _Taken, target: Path
) -> _Folder:
    # Checked again: labels may have changed, or the dataset gone, since the run was queued.
    with sessions() as session:
        reason = why_not_teachable(session, taken.dataset_id)
        dataset = session.get(Dataset, taken.dataset_id)
        if reason is not None or dataset is None:
            raise _Refused(reason or f"no capture or dataset {taken.dataset_id}")
        placed, sizes = placed_files(session, dataset)
        facts = dataset_facts(dataset)
        model = dataset.model or {}
    parent = model.get("version") if model.get("name") == taken.name else None
    return _Folder(write_training_folder(captures, placed, sizes, facts, target), parent)


def teach(
    sessions: sessionmaker[Session],
    settings: CloudSettings,
    stores: Stores,
    run_id: int,
    timeout_s: float = TIMEOUT_S,
) -> str:
    """Carry out run ``run_id`` if it is queued; its status afterwards."""
    taken = _take(sessions, run_id)
    if taken is None:
        with sessions() as session:
            run = session.get(TrainingRun, run_id)
            return run.status if run is not None else FAILED
    log.info("training run %d: %s %s from dataset %s", run_id, taken.name, taken.version, taken.dataset_id)
    tail: str | None = None
    try:
        with tempfile.TemporaryDirectory(prefix=f"factory-teach-{run_id}-") as scratch:
            data, out = Path(scratch) / "data", Path(scratch) / "out"
            folder = _write_folder(sessions, stores.captures, taken, data)
            argv = train_argv(data, out, taken.name, taken.version, taken.params)
            tail = run_trainer(
                argv, Path(scratch), lambda t: _update(sessions, run_id, log_tail=t), timeout_s
            )
            candidate = _keep(
                sessions,
                settings,
                stores,
                run_id,
                read_candidate(out, taken.name, taken.version),
                folder,
                tail,
            )
            if settings.training_signing_key:
                with sessions.begin() as session:
                    run = session.get(TrainingRun, run_id)
                    if run is None:
                        raise _Refused(f"training run {run_id} was deleted while it ran")
                    sign_and_register(session, settings, stores.models, candidate, run)
                    run.signed = True
    except TrainerError as exc:
        return _fail(sessions, run_id, str(exc), exc.tail)
    except (_Refused, *_REFUSALS) as exc:
        return _fail(sessions, run_id, str(exc), tail)
    except Exception as exc:
        _fail(sessions, run_id, f"unexpected error: {exc!r}", tail)
        raise
    _update(sessions, run_id, status=SUCCEEDED, finished_at=utcnow())
    log.info(
        "training run %d succeeded%s", run_id, "" if settings.training_signing_key else ", awaiting signature"
    )
    return SUCCEEDED


def _keep(
    sessions: sessionmaker[Session],
    settings: CloudSettings,
    stores: Stores,
    run_id: int,
    made: Candidate,
    folder: _Folder,
    tail: str,
) -> Candidate:
    """Stamp the candidate, keep its files and record what it measured; committed before any
    signing, so a candidate the key cannot sign stays downloadable from its failed run."""
    with sessions.begin() as session:
        run = session.get(TrainingRun, run_id)
        if run is None:
            raise _Refused(f"training run {run_id} was deleted while it ran")
        candidate = stamp(made, run, folder.parent_version, settings.public_url)
        run.artifacts = {path.name: keep_file(stores.training, path) for path in candidate.files}
        run.artifact_sha256 = candidate.manifest.sha256
        run.figures = figures(candidate, folder.facts)
        run.log_tail = tail
    return candidate


def _fail(sessions: sessionmaker[Session], run_id: int, reason: str, tail: str | None) -> str:
    log.warning("training run %d failed: %s", run_id, reason)
    _update(sessions, run_id, status=FAILED, error=reason, finished_at=utcnow(), log_tail=tail)
    return FAILED
