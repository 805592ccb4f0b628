"""Rollouts: admins start them, operators pause, resume and abort them, everyone watches."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.deps import SessionDep, SettingsDep
from cloud.api.schemas_registry import RolloutAction, RolloutEventPublic, RolloutPublic
from cloud.auth.deps import Admin, Operator, Viewer
from cloud.auth.service import audit
from cloud.db.models import Rollout, RolloutEvent
from cloud.ota import rollouts as engine
from cloud.ota.desired import DesiredPublisher
from cloud.ota.health import gateway_status
from cloud.ota.schemas import RolloutCreate
from cloud.registry.service import RegistryError
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


def _public(session: Session, row: Rollout) -> RolloutPublic:
    now = utcnow()
    gateways = {}
    for gw, entry in row.plan.items():
        status, why = ("waiting", None)
        if entry.get("started"):
            status, why = gateway_status(session, row, gw, now)
        gateways[gw] = {"wave": entry["wave"] + 1, "status": status, "reason": why}
    events = session.scalars(
        select(RolloutEvent).where(RolloutEvent.rollout_id == row.id).order_by(RolloutEvent.id)
    )
    out = RolloutPublic.model_validate(row)
    return out.model_copy(
        update={"gateways": gateways, "events": [RolloutEventPublic.model_validate(e) for e in events]}
    )


@router.post("", status_code=201)
def create(body: RolloutCreate, session: SessionDep, who: Admin) -> RolloutPublic:
    """Plan a rollout; its first wave starts on the next tick."""
    try:
        row = engine.create_rollout(session, body, who.name)
    except RegistryError as exc:
        session.rollback()
        raise HTTPException(exc.status, str(exc)) from None
    audit(session, who, "rollout.create", row.id, model=body.model_name, version=body.version)
    session.commit()
    return _public(session, row)


@router.get("")
def list_rollouts(session: SessionDep, _who: Viewer) -> list[RolloutPublic]:
    """Rollouts, newest first (events omitted; get one for its log)."""
    rows = session.scalars(select(Rollout).order_by(Rollout.created_at.desc())).all()
    return [RolloutPublic.model_validate(r) for r in rows]


@router.get("/{rollout_id}")
def get_rollout(rollout_id: str, session: SessionDep, _who: Viewer) -> RolloutPublic:
    """One rollout with per-gateway status and its event log."""
    return _public(session, _get(session, rollout_id))


@router.post("/{rollout_id}/{action}", responses={409: {"description": "Not possible in this state"}})
def act(
    rollout_id: str,
    action: str,
    body: RolloutAction,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: Operator,
) -> RolloutPublic:
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
