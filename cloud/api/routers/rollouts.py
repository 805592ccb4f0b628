"""Rollouts: admins start them, operators pause, resume and abort them, everyone watches."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.auth import Admin, Operator, Viewer
from cloud.api.deps import SessionDep, SettingsDep
from cloud.api.schemas_registry import RolloutAction, RolloutEventPublic, RolloutPublic
from cloud.auth.service import audit
from cloud.db.models import Rollout, RolloutEvent
from cloud.ota import rollouts as engine
from cloud.ota.desired import DesiredPublisher
from cloud.ota.progress import all_progress, summaries
from cloud.ota.schemas import GatewayProgress, RolloutCreate, RolloutProgress
from cloud.registry.service import RegistryError
from cloud.shadow import gates as shadow_gates
from protocol.messages import utcnow

router = APIRouter(prefix="/rollouts", tags=["rollouts"])


def _publisher(request: Request) -> DesiredPublisher:
    publisher: DesiredPublisher = request.app.state.publisher()
    return publisher


def _get(session: Session, rollout_id: str, lock: bool = False) -> Rollout:
    query = select(Rollout).where(Rollout.id == rollout_id)
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise HTTPException(404, f"rollout {rollout_id!r} not found")
    return row


class RolloutDetail(RolloutPublic):
    """One rollout with per-gateway progress, the measured health behind it, and its event log."""

    gateways: dict[str, GatewayProgress] = Field(  # type: ignore[assignment]
        default_factory=dict, description="Per gateway: wave, status, phase and health gates with values"
    )
    wave_started_at: datetime | None = Field(None, description="When the current wave started")
    wave_healthy_since: datetime | None = Field(
        None, description="Since when every gateway of the current wave is healthy (its bake started)"
    )
    as_of: datetime = Field(description="When the statuses and measurements were judged")


class RolloutListed(RolloutPublic):
    """A rollout in the list: its plan's counts instead of per-gateway detail."""

    progress: RolloutProgress = Field(description="Planned, started, installed and failed gateways")


def _public(session: Session, row: Rollout) -> RolloutDetail:
    now = utcnow()
    gateways = all_progress(session, row, now)
    events = session.scalars(
        select(RolloutEvent).where(RolloutEvent.rollout_id == row.id).order_by(RolloutEvent.id)
    )
    base = RolloutPublic.model_validate(row).model_dump(exclude={"gateways", "events"})
    return RolloutDetail(
        **base,
        gateways=gateways,
        events=[RolloutEventPublic.model_validate(e) for e in events],
        wave_started_at=row.wave_started_at,
        wave_healthy_since=row.wave_healthy_since,
        as_of=now,
    )


@router.post(
    "",
    status_code=201,
    responses={
        404: {"description": "The model version is not in the registry"},
        409: {"description": "A running or paused rollout already plans one of the gateway slots"},
        422: {
            "description": "Unknown gateway ids, no target, no slot that fits the model, a slot "
            "already running an equal or newer version (gateways accept only rising versions per slot), "
            "or a promotion whose shadow evidence misses its gates (each gateway's figures named)"
        },
    },
)
def create(body: RolloutCreate, session: SessionDep, who: Admin) -> RolloutDetail:
    """Plan a rollout; its first wave starts on the next tick. Without a slot, the slot running
    this model (else the one running a model of its task) on the targeted gateways is used.
    Gateways that already run this very version are named in a ``notice`` event of the rollout
    (they serve it on; for them the rollout is a no-op). With ``gates`` it is a promotion: planned
    only when the version's shadow run passed them on every planned gateway."""
    try:
        row = engine.create_rollout(session, body, who.name)
        if body.gates is not None:
            verdicts = shadow_gates.judge(session, row, body.gates)
            if not all(v.passed for v in verdicts):
                raise RegistryError(422, shadow_gates.refusal(row, verdicts))
            shadow_gates.record(session, row, body.gates, verdicts)
    except RegistryError as exc:
        session.rollback()
        raise HTTPException(exc.status, str(exc)) from None
    gated = body.gates is not None
    audit(session, who, "rollout.create", row.id, model=body.model_name, version=body.version, gated=gated)
    session.commit()
    return _public(session, row)


@router.get("")
def list_rollouts(session: SessionDep, _who: Viewer) -> list[RolloutListed]:
    """Rollouts, newest first, with how far each got (events omitted; get one for its log)."""
    rows = session.scalars(select(Rollout).order_by(Rollout.created_at.desc())).all()
    progress = summaries(session, rows, utcnow())
    return [
        RolloutListed(**RolloutPublic.model_validate(r).model_dump(), progress=progress[r.id]) for r in rows
    ]


@router.get("/{rollout_id}", responses={404: {"description": "Unknown rollout"}})
def get_rollout(rollout_id: str, session: SessionDep, _who: Viewer) -> RolloutDetail:
    """One rollout with per-gateway status, the measured health gates of started gateways, and its log."""
    return _public(session, _get(session, rollout_id))


@router.post(
    "/{rollout_id}/{action}",
    responses={
        404: {"description": "Unknown rollout, or an action other than pause, resume, abort"},
        409: {"description": "Not possible in this state"},
    },
)
def act(
    rollout_id: str,
    action: str,
    body: RolloutAction,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: Operator,
) -> RolloutDetail:
    """``pause``, ``resume`` or ``abort`` (which rolls the touched gateways back)."""
    if action not in ("pause", "resume", "abort"):
        raise HTTPException(404, f"unknown action {action!r} (pause, resume, abort)")
    row = _get(session, rollout_id, lock=True)
    states = []
    try:
        if action == "pause":
            engine.pause(session, row, who.name)
        elif action == "resume":
            engine.resume(session, row, who.name)
        else:
            states = engine.abort(session, settings, row, body.reason or f"aborted by {who.name}", who.name)
    except RegistryError as exc:
        session.rollback()
        raise HTTPException(exc.status, str(exc)) from None
    audit(session, who, f"rollout.{action}", rollout_id, reason=body.reason)
    session.commit()
    if states:
        _publisher(request).publish(states)
    return _public(session, row)
