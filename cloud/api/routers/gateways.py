"""Gateways: online state, versions, models, telemetry, admin-managed placement and OTA state."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from cloud.api.auth import Admin
from cloud.api.deps import SessionDep
from cloud.api.params import MAX_OFFSET
from cloud.api.schemas import EventPage, EventPublic, GatewayOta, GatewayPublic
from cloud.api.schemas_registry import GatewayUpdate
from cloud.auth.service import audit
from cloud.db.models import Event, Gateway, GatewayDesired, GatewayReported

router = APIRouter(prefix="/gateways", tags=["gateways"])


class ReportedPublic(BaseModel):
    """A gateway's latest reported OTA state, as ``GET /gateways/{id}/ota`` gives it."""

    desired_revision: int = Field(description="The desired revision the gateway last acted on")
    rollout_id: str | None = Field(description="The rollout behind that revision, if any")
    slots: dict[str, Any] = Field(description="Per slot: phase, active/previous/target model, error, health")
    timestamp: datetime = Field(description="When the gateway reported it")


class GatewayListed(GatewayPublic):
    """A gateway in the list; ``reported`` is present only when asked for with ``?reported=true``."""

    reported: ReportedPublic | None = Field(
        None, description="Latest reported OTA state (null: the gateway never reported one)"
    )


@router.get("", response_model_exclude_unset=True)
def list_gateways(
    session: SessionDep,
    reported: Annotated[
        bool,
        Query(
            description="Also return each gateway's latest reported OTA state (what runs in each slot "
            "and how its last update went), read with the gateways in one query: a fleet view needs "
            "no `GET /gateways/{id}/ota` per gateway"
        ),
    ] = False,
) -> list[GatewayListed]:
    """Every known gateway, by id; with ``reported=true`` also its reported OTA state."""
    if not reported:
        rows = session.scalars(select(Gateway).order_by(Gateway.id)).all()
        return [_listed(g) for g in rows]
    # One LEFT JOIN, so the cost stays one statement however many gateways there are.
    joined = session.execute(
        select(Gateway, GatewayReported)
        .outerjoin(GatewayReported, GatewayReported.gateway_id == Gateway.id)
        .order_by(Gateway.id)
    ).all()
    return [_listed(g, _reported(r) if r is not None else None, with_reported=True) for g, r in joined]


def _listed(
    gateway: Gateway, reported: ReportedPublic | None = None, with_reported: bool = False
) -> GatewayListed:
    # Every field of GatewayPublic is passed explicitly, so only ``reported`` can be left unset
    # (and then left out of the answer by ``response_model_exclude_unset``).
    fields = GatewayPublic.model_validate(gateway).model_dump()
    if with_reported:
        fields["reported"] = reported
    return GatewayListed(**fields)


def _reported(row: GatewayReported) -> ReportedPublic:
    return ReportedPublic(
        desired_revision=row.desired_revision,
        rollout_id=row.rollout_id,
        slots=row.slots,
        timestamp=row.timestamp,
    )


@router.get("/{gateway_id}", responses={404: {"description": "Unknown gateway"}})
def get_gateway(gateway_id: str, session: SessionDep) -> GatewayPublic:
    """One gateway; 404 if the cloud never heard from it."""
    gateway = session.get(Gateway, gateway_id)
    if gateway is None:
        raise HTTPException(status_code=404, detail=f"gateway {gateway_id!r} not found")
    return GatewayPublic.model_validate(gateway)


@router.patch("/{gateway_id}", responses={404: {"description": "Unknown gateway"}})
def update_gateway(gateway_id: str, body: GatewayUpdate, session: SessionDep, who: Admin) -> GatewayPublic:
    """Set a gateway's site, tags and line (the placement rollouts target; admin, audited).

    The line is the cloud's record: results the gateway sends are stored under it from now on,
    whatever line they claim."""
    gateway = session.get(Gateway, gateway_id)
    if gateway is None:
        raise HTTPException(status_code=404, detail=f"gateway {gateway_id!r} not found")
    changes = body.model_dump(exclude_unset=True)
    for key, value in changes.items():
        setattr(gateway, key, value if key != "tags" else sorted(set(value or [])))
    audit(session, who, "gateway.update", gateway_id, **changes)
    session.commit()
    return GatewayPublic.model_validate(gateway)


@router.get("/{gateway_id}/events", responses={404: {"description": "Unknown gateway"}})
def list_events(
    gateway_id: str,
    session: SessionDep,
    kind: Annotated[str | None, Query(description="Only this kind, e.g. ota or outbox_shed")] = None,
    level: Annotated[Literal["info", "warning", "error"] | None, Query(description="Only this level")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Events to skip")] = 0,
) -> EventPage:
    """The events a gateway reported (OTA steps, outbox shedding...), newest first."""
    if session.get(Gateway, gateway_id) is None:
        raise HTTPException(status_code=404, detail=f"gateway {gateway_id!r} not found")
    query = select(Event).where(Event.gateway_id == gateway_id)
    if kind is not None:
        query = query.where(Event.kind == kind)
    if level is not None:
        query = query.where(Event.level == level)
    # One row more than asked says whether a next page exists without a count(*).
    query = query.order_by(Event.timestamp.desc(), Event.id.desc()).offset(offset).limit(limit + 1)
    rows = session.scalars(query).all()
    return EventPage(
        items=[EventPublic.model_validate(e) for e in rows[:limit]],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if len(rows) > limit else None,
    )


@router.get("/{gateway_id}/ota", responses={404: {"description": "Unknown gateway"}})
def get_ota(gateway_id: str, session: SessionDep, limit: int = Query(50, ge=1, le=1000)) -> GatewayOta:
    """Desired and reported state of a gateway and its OTA event history."""
    desired = session.get(GatewayDesired, gateway_id)
    reported = session.get(GatewayReported, gateway_id)
    if desired is None and reported is None and session.get(Gateway, gateway_id) is None:
        raise HTTPException(status_code=404, detail=f"gateway {gateway_id!r} not found")
    events = session.scalars(
        select(Event)
        .where(Event.gateway_id == gateway_id, Event.kind.startswith("ota"))
        .order_by(Event.timestamp.desc())
        .limit(limit)
    )
    return GatewayOta(
        gateway_id=gateway_id,
        desired=desired.document if desired else None,
        reported=(
            {
                "desired_revision": reported.desired_revision,
                "rollout_id": reported.rollout_id,
                "slots": reported.slots,
                "timestamp": reported.timestamp.isoformat(),
            }
            if reported
            else None
        ),
        history=[
            {
                "timestamp": e.timestamp.isoformat(),
                "level": e.level,
                "kind": e.kind,
                "message": e.message,
                "details": e.details,
            }
            for e in events
        ],
    )
