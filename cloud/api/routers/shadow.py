"""Shadow runs: name a challenger beside a slot's model on gateways, stop it, and read the evidence.

Starting or stopping one changes each targeted gateway's desired state (admins, as rollouts: a
challenger runs on the gateway's CPU beside the serving model); the status sums the comparison
records the gateways send (anyone who reads).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from cloud.api.auth import Admin, Viewer
from cloud.api.deps import SessionDep, SettingsDep
from cloud.auth.service import audit
from cloud.ota.desired import DesiredPublisher
from cloud.registry.service import RegistryError
from cloud.shadow import service
from cloud.shadow.schemas import ShadowChange, ShadowSlotStatus, ShadowStart, ShadowStop
from protocol.messages import ModelRef
from protocol.ota import DesiredState

log = logging.getLogger(__name__)
router = APIRouter(prefix="/shadow", tags=["shadow"])


def _publish(request: Request, states: Sequence[DesiredState]) -> bool:
    """Publish after the commit; False when the broker did not take them (the caller says so)."""
    publisher: DesiredPublisher = request.app.state.publisher()
    try:
        publisher.publish(states)
    except Exception as exc:  # noqa: BLE001  # whatever the broker raised: the answer says it
        log.warning("shadow: desired states not published: %s", exc)
        return False
    return True


@router.post(
    "",
    responses={
        404: {"description": "The model version is not in the registry"},
        422: {
            "description": "Unknown gateways, no target, no fitting slot, or a version it could not replace"
        },
    },
)
def start(
    body: ShadowStart, request: Request, session: SessionDep, settings: SettingsDep, who: Admin
) -> ShadowChange:
    """Run a registered version as the challenger of a slot on the targeted gateways (admin; audited).

    Each gateway verifies and smoke-tests it as an install, then runs it on the slot's frames after
    the serving model; its outputs drive nothing. Refused when a rollout could not promote it
    later: a slot of another task, or a version not above the one serving."""
    try:
        slot, states = service.start(session, settings, body)
    except RegistryError as exc:
        session.rollback()
        raise HTTPException(exc.status, str(exc)) from None
    gateways = [s.gateway_id for s in states]
    audit(session, who, "shadow.start", f"{body.model_name}:{body.version}", slot=slot, gateways=gateways)
    session.commit()
    challenger = states[0].challengers[slot].manifest
    ref = ModelRef(name=challenger.name, version=challenger.version, sha256=challenger.sha256)
    return ShadowChange(slot=slot, gateways=gateways, challenger=ref, published=_publish(request, states))


@router.post("/stop", responses={404: {"description": "No targeted gateway has a challenger in the slot"}})
def stop(
    body: ShadowStop, request: Request, session: SessionDep, settings: SettingsDep, who: Admin
) -> ShadowChange:
    """Drop the slot's challenger on the targeted gateways (admin; audited)."""
    try:
        states = service.stop(session, settings, body.slot, body.target)
    except RegistryError as exc:
        session.rollback()
        raise HTTPException(exc.status, str(exc)) from None
    gateways = [s.gateway_id for s in states]
    audit(session, who, "shadow.stop", body.slot, gateways=gateways)
    session.commit()
    return ShadowChange(
        slot=body.slot, gateways=gateways, challenger=None, published=_publish(request, states)
    )


@router.get("")
def shadow_status(
    session: SessionDep,
    _who: Viewer,
    line: Annotated[str | None, Query(max_length=64, description="Only gateways of this line")] = None,
    model: Annotated[str | None, Query(max_length=128, description="Only challengers of this model")] = None,
    version: Annotated[str | None, Query(max_length=64, description="Only this challenger version")] = None,
) -> list[ShadowSlotStatus]:
    """Each gateway slot with a challenger: champion, challenger, its phase, and the comparison
    records summed (frames compared and skipped, agreement, each model's flag rate, p95 latency,
    the captures of the frames where they disagreed)."""
    return service.status(session, line=line, model=model, version=version)
