"""Training runs: operators teach a dataset's frames as the new normal, everyone watches.

``POST /training-runs`` records a run and hands it to the Celery worker (``cloud/training``), which
fits the candidate with ``factory-models train defect`` as a process. The answer is the run: queued,
or failed at once with the reason when the dataset cannot teach a model (unknown, empty, too few
good frames), so the caller sees why in the same place a later failure would show.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse

from cloud.api.auth import Operator, Viewer
from cloud.api.deps import SessionDep
from cloud.api.params import MAX_OFFSET, RowId
from cloud.auth.service import audit
from cloud.registry.store import ArtifactStore
from cloud.training import runs
from cloud.training.queue import TeachQueue
from cloud.training.schemas import LIST_LIMIT, RunStatus, TeachRequest, TrainingRunDetail, TrainingRunPage
from protocol.messages import utcnow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/training-runs", tags=["training"])
FileName = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=200, description="A file of the run")


def _refused(exc: runs.RunError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


@router.post("", status_code=201, responses={409: {"description": "The dataset has a run queued or running"}})
def start_run(body: TeachRequest, request: Request, session: SessionDep, who: Operator) -> TrainingRunDetail:
    """Teach a dataset's frames as the new normal (operator or admin; audited): fit a candidate model.

    The answer is the run, ``queued``; or ``failed`` with the reason when the dataset cannot teach
    a model now (unknown, no frames, fewer than 13 good ones). Signed and registered when the
    cloud holds a signing key, else it ends ``succeeded`` awaiting an engineer's signature.
    """
    try:
        run = runs.request_run(session, body.dataset_id, body, who)
    except runs.RunError as exc:
        session.rollback()
        raise _refused(exc) from None
    audit(session, who, "training.start", str(run.id), dataset_id=run.dataset_id, status=run.status)
    session.commit()
    if run.status == runs.QUEUED:
        queue: TeachQueue = request.app.state.teach_queue()
        try:
            queue.enqueue(run.id)
        except Exception as exc:  # noqa: BLE001  # whatever the broker raised: the run says why
            log.warning("training run %d: the task queue did not take it: %s", run.id, exc)
            run.status, run.finished_at = runs.FAILED, utcnow()
            run.error = f"the task queue did not take the run ({exc}); start it again"
            session.commit()
    return runs.detail(session, run, runs.push_commands(run))


@router.get("")
def list_runs(
    session: SessionDep,
    who: Viewer,
    dataset: Annotated[str | None, Query(max_length=40, description="Only runs of this dataset")] = None,
    status: Annotated[RunStatus | None, Query(description="Only runs in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=LIST_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> TrainingRunPage:
    """Training runs, newest first."""
    return runs.run_page(session, dataset_id=dataset, status=status, offset=offset, limit=limit)


@router.get("/{run_id}", responses={404: {"description": "Unknown run"}})
def get_run(run_id: RowId, session: SessionDep, who: Viewer) -> TrainingRunDetail:
    """One run: state, log tail, figures, lineage (dataset, code version, seed, parameters), the
    model it made and the gateways running it, or how to sign and push it when it awaits that."""
    try:
        run = runs.get_run(session, run_id)
    except runs.RunError as exc:
        raise _refused(exc) from None
    return runs.detail(session, run, runs.push_commands(run))


@router.get(
    "/{run_id}/files/{name}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file"},
        404: {"description": "No such run or file"},
    },
)
def download_file(
    run_id: RowId, request: Request, session: SessionDep, who: Viewer, name: str = FileName
) -> StreamingResponse:
    """A file of the run's candidate (graph, manifest, card...): what an engineer signs and pushes."""
    try:
        run = runs.get_run(session, run_id)
    except runs.RunError as exc:
        raise _refused(exc) from None
    entry = (run.artifacts or {}).get(name)
    if entry is None:
        raise HTTPException(404, f"training run {run_id} has no file {name}")
    store: ArtifactStore = request.app.state.training_store
    sha, size = str(entry["sha256"]), int(entry["size_bytes"])
    body: Iterator[bytes] = store.read(sha, 0, size - 1)
    headers = {"Content-Length": str(size), "ETag": f'"{sha}"'}
    return StreamingResponse(body, headers=headers, media_type="application/octet-stream")
