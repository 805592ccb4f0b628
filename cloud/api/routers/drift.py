"""Model drift per slot: a gateway's, or those of every gateway of a line (how: :mod:`cloud.drift`)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from cloud.api.deps import SessionDep
from cloud.db.models import Gateway
from cloud.drift import SlotVerdict, gateway_verdicts, line_gateways

router = APIRouter(tags=["drift"])


class MovementPublic(BaseModel):
    """A signal over its threshold."""

    signal: str = Field(description="brightness, contrast, warmth, tint, sharpness, score or confidence")
    direction: str | None = Field(description="up or down; null when only telemetry reported it")


class SlotDriftPublic(BaseModel):
    """One watched slot's drift verdict, as the cloud last heard it."""

    gateway_id: str
    slot: str
    state: str = Field(description="ok, suspected or confirmed")
    summary: str = Field(
        description="What moved, in plain words ('light moved (brightness up), scores up 1.4x')"
    )
    model: str | None = Field(description="'name version' of the release the verdict is about")
    moved: list[MovementPublic]
    cause: str | None = Field(description="look (an input signal moved) or scores (only the scores did)")
    score_ratio: float | None = Field(description="The window's median score / the fit-time median")
    ratio: float | None = Field(description="The largest statistic / its threshold at the last evaluation")
    frames: int | None = Field(description="Frames in the gateway's window when last sampled")
    window: int | None = Field(description="Frames the verdict compares")
    since: datetime | None = Field(description="When the slot entered this state (null: not reported)")
    reported_at: datetime = Field(description="The gateway's time of the report that decided the state")


def _public(v: SlotVerdict) -> SlotDriftPublic:
    return SlotDriftPublic(
        gateway_id=v.gateway_id,
        slot=v.slot,
        state=v.state,
        summary=v.summary,
        model=v.model,
        moved=[MovementPublic(signal=m.signal, direction=m.direction) for m in v.moved],
        cause=v.cause,
        score_ratio=v.score_ratio,
        ratio=v.ratio,
        frames=v.frames,
        window=v.window,
        since=v.since,
        reported_at=v.reported_at,
    )


@router.get("/gateways/{gateway_id}/drift", responses={404: {"description": "Unknown gateway"}})
def gateway_drift(gateway_id: str, session: SessionDep) -> list[SlotDriftPublic]:
    """The drift verdict of each watched slot of a gateway, by slot (empty: no slot is watched)."""
    gateway = session.get(Gateway, gateway_id)
    if gateway is None:
        raise HTTPException(status_code=404, detail=f"gateway {gateway_id!r} not found")
    return [_public(v) for v in gateway_verdicts(session, [gateway])[gateway.id]]


@router.get("/lines/{line}/drift")
def line_drift(line: str, session: SessionDep) -> list[SlotDriftPublic]:
    """The drift verdict of each watched slot of the line's gateways, by gateway and slot."""
    verdicts = gateway_verdicts(session, line_gateways(session, line))
    return [_public(v) for slots in verdicts.values() for v in slots]
