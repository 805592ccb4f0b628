"""Gateways: online state from birth/death, versions, models, latest telemetry."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from sqlalchemy import select

from cloud.api.deps import SessionDep
from cloud.api.schemas import GatewayPublic
from cloud.db.models import Gateway

router = APIRouter(prefix="/gateways", tags=["gateways"])


@router.get("")
def list_gateways(session: SessionDep) -> list[GatewayPublic]:
    """Every known gateway, by id."""
    rows = session.scalars(select(Gateway).order_by(Gateway.id)).all()
    return [GatewayPublic.model_validate(g) for g in rows]


@router.get("/{gateway_id}", responses={404: {"description": "Unknown gateway"}})
def get_gateway(gateway_id: str, session: SessionDep) -> GatewayPublic:
    """One gateway; 404 if the cloud never heard from it."""
    gateway = session.get(Gateway, gateway_id)
    if gateway is None:
        raise HTTPException(status_code=404, detail=f"gateway {gateway_id!r} not found")
    return GatewayPublic.model_validate(gateway)
