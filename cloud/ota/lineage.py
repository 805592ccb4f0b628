"""The rollouts of one version, for its lineage (dataset -> run -> artifact -> shadow -> rollouts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import Rollout, RolloutEvent

# The event a promotion's passed shadow gates leave in its rollout's log (cloud/shadow/gates.py).
GATES_EVENT = "shadow_gates"


class RolloutBrief(BaseModel):
    """A rollout of the version, in a line: where it went, how it ended, whether it was gated."""

    id: str
    slot: str
    state: str
    target: dict[str, Any]
    reason: str | None
    created_at: datetime
    created_by: str
    gated: bool = Field(description="A promotion planned on passed shadow gates (the figures are in its log)")


def rollouts_of(session: Session, name: str, version: str) -> list[RolloutBrief]:
    """Every rollout of ``name`` ``version``, newest first."""
    rows = session.scalars(
        select(Rollout)
        .where(Rollout.model_name == name, Rollout.version == version)
        .order_by(Rollout.created_at.desc())
    ).all()
    gated = set(
        session.scalars(
            select(RolloutEvent.rollout_id).where(
                RolloutEvent.rollout_id.in_([r.id for r in rows]), RolloutEvent.kind == GATES_EVENT
            )
        )
    )
    return [
        RolloutBrief(
            id=r.id,
            slot=r.slot,
            state=r.state,
            target=r.target,
            reason=r.reason,
            created_at=r.created_at,
            created_by=r.created_by,
            gated=r.id in gated,
        )
        for r in rows
    ]
