"""Start and stop shadow runs, and read what they measured.

A shadow run is no row of its own: the gateway's desired state names the challenger per slot
(``challengers``), the gateway reports its phase in its reported state, and each window of
comparison arrives as a ``shadow_comparison`` event. So a start or stop is a desired-state change
(``cloud/ota/desired.py: stage_challengers``), and the status joins the three.

A start is refused, with the reason, when it could not be promoted later: an unknown version or
gateway, a slot the gateways lack or that runs a model of another task, a version not above the
one serving (gateways install only rising versions per slot), or a version already serving.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.config import CloudSettings
from cloud.db.models import Event, Gateway, GatewayDesired, GatewayReported, ModelVersion
from cloud.ota.desired import stage_challengers
from cloud.ota.installed import already_notice, already_running, downgrade_problem
from cloud.ota.planning import choose_slot, no_match, resolve_target, slot_problem, slot_use, task_problem
from cloud.ota.schemas import RolloutCreate, Target
from cloud.registry.service import RegistryError, offer_for
from cloud.shadow.schemas import ShadowSlotStatus, ShadowStart
from protocol.messages import ModelRef
from protocol.ota import DesiredState
from protocol.shadow import SHADOW_EVENT_KIND, VERDICT_DEFECT, ShadowComparison

log = logging.getLogger(__name__)
PROMOTED = "promoted"  # the status's phase once the challenger serves the slot


def start(session: Session, settings: CloudSettings, req: ShadowStart) -> tuple[str, list[DesiredState]]:
    """Name the challenger on each targeted gateway; the slot and the states to publish after commit."""
    version = session.scalar(
        select(ModelVersion).where(ModelVersion.name == req.model_name, ModelVersion.version == req.version)
    )
    if version is None:
        raise RegistryError(404, f"model {req.model_name} version {req.version} is not in the registry")
    # The rollout planner's checks, on the same target: a challenger must be promotable by a rollout.
    plan = RolloutCreate(model_name=req.model_name, version=req.version, slot=req.slot, target=req.target)
    gateways = _targeted(session, plan)
    use = slot_use(session, gateways)
    slot = choose_slot(plan, version, use, gateways)
    problem = slot_problem(use, slot) or task_problem(use, slot, req.model_name, version.task)
    running = use.active.get(slot, {})
    problem = problem or downgrade_problem(running, slot, req.model_name, req.version)
    serving = already_running(running, req.model_name, req.version)
    if problem is None and serving:
        problem = already_notice(serving, req.model_name, req.version) + ": nothing to shadow it against"
    if problem is not None:
        raise RegistryError(422, problem)
    offer = offer_for(settings, version)
    return slot, stage_challengers(session, settings, dict.fromkeys(gateways, offer), slot)


def stop(session: Session, settings: CloudSettings, slot: str, target: Target) -> list[DesiredState]:
    """Drop the challenger of ``slot`` on each targeted gateway that has one asked for."""
    plan = RolloutCreate(model_name="-", version="-", slot=slot, target=target)
    gateways = _targeted(session, plan)
    asked = {
        row.gateway_id
        for row in session.scalars(select(GatewayDesired).where(GatewayDesired.gateway_id.in_(gateways)))
        if slot in ((row.document or {}).get("challengers") or {})
    }
    if not asked:
        raise RegistryError(404, f"no targeted gateway has a challenger in slot {slot}")
    return stage_challengers(session, settings, dict.fromkeys(sorted(asked)), slot)


def _targeted(session: Session, plan: RolloutCreate) -> list[str]:
    known = set(session.scalars(select(Gateway.id).where(Gateway.id.in_(plan.target.gateways))))
    unknown = sorted(set(plan.target.gateways) - known)
    if unknown:
        raise RegistryError(422, f"unknown gateway(s) {', '.join(unknown)}: they never connected")
    gateways = resolve_target(session, plan)
    if not gateways:
        raise RegistryError(422, no_match(session, plan))
    return gateways


@dataclass
class _Sums:
    """Comparison records of one gateway slot, champion and challenger, summed."""

    windows: int = 0
    compared: int = 0
    skipped: int = 0
    errors: int = 0
    agreeing: int = 0
    champion_flags: int = 0
    challenger_flags: int = 0
    flags_known: bool = True
    champion_p95: float | None = None
    challenger_p95: float | None = None
    captures: list[str] = field(default_factory=list)
    first_at: datetime | None = None
    last_at: datetime | None = None

    def add(self, record: ShadowComparison) -> None:
        self.windows += 1
        self.compared += record.compared
        self.skipped += record.skipped
        self.errors += record.challenger_errors
        self.agreeing += record.compared - record.disagreements
        verdicts = {c.champion for c in record.matrix} | {c.challenger for c in record.matrix}
        # Flag rates say something only for a defect model's two verdicts.
        self.flags_known &= verdicts <= {VERDICT_DEFECT, "good"}
        self.champion_flags += sum(c.frames for c in record.matrix if c.champion == VERDICT_DEFECT)
        self.challenger_flags += sum(c.frames for c in record.matrix if c.challenger == VERDICT_DEFECT)
        self.champion_p95 = _larger(self.champion_p95, record.champion_p95_ms)
        self.challenger_p95 = _larger(self.challenger_p95, record.challenger_p95_ms)
        if record.capture_id and record.capture_id not in self.captures:
            self.captures.append(record.capture_id)
        self.first_at = min(filter(None, (self.first_at, record.started_at)))
        self.last_at = max(filter(None, (self.last_at, record.ended_at)))

    def share(self, count: int, known: bool = True) -> float | None:
        return count / self.compared if self.compared and known else None


def _larger(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def status(
    session: Session, line: str | None = None, model: str | None = None, version: str | None = None
) -> list[ShadowSlotStatus]:
    """Every gateway slot with a challenger asked for (of ``model`` ``version`` when given), with
    the gateway's report and the sums of the comparison records of that champion and challenger."""
    query = select(GatewayDesired, Gateway.line).join(Gateway, Gateway.id == GatewayDesired.gateway_id)
    if line is not None:
        query = query.where(Gateway.line == line)
    rows: list[ShadowSlotStatus] = []
    for desired, gateway_line in session.execute(query.order_by(GatewayDesired.gateway_id)):
        wanted = (desired.document or {}).get("challengers") or {}
        if not wanted:
            continue
        reported = session.get(GatewayReported, desired.gateway_id)
        for slot, offer in sorted(wanted.items()):
            m = offer["manifest"]
            if (model is not None and m["name"] != model) or (
                version is not None and m["version"] != version
            ):
                continue
            challenger = ModelRef(name=m["name"], version=m["version"], sha256=m["sha256"])
            rows.append(_slot_status(session, desired.gateway_id, gateway_line, slot, challenger, reported))
    return rows


def _slot_status(
    session: Session,
    gateway_id: str,
    line: str | None,
    slot: str,
    challenger: ModelRef,
    reported: GatewayReported | None,
) -> ShadowSlotStatus:
    report: dict[str, Any] = (reported.slots.get(slot) or {}) if reported is not None else {}
    active = report.get("active")
    champion = ModelRef.model_validate(active) if active else None
    said: dict[str, Any] = report.get("challenger") or {}
    reports_this = (said.get("model") or {}).get("sha256") == challenger.sha256
    # Promoted: the challenger serves now, and the evidence that promoted it was gathered beside
    # the champion it replaced (the slot's previous model), which stays the one to show.
    promoted = champion is not None and champion.sha256 == challenger.sha256
    if promoted:
        previous = report.get("previous")
        champion = ModelRef.model_validate(previous) if previous else None
        said = {"phase": PROMOTED}
        reports_this = True
    sums = _Sums()
    for event in session.scalars(
        select(Event)
        .where(Event.gateway_id == gateway_id, Event.kind == SHADOW_EVENT_KIND)
        .order_by(Event.timestamp, Event.id)
    ):
        if event.details.get("slot") != slot or event.details.get("challenger_sha256") != challenger.sha256:
            continue
        if champion is not None and event.details.get("champion_sha256") != champion.sha256:
            continue  # an earlier champion's comparisons say nothing about this one
        try:
            sums.add(ShadowComparison.from_details(event.details))
        except ValueError as exc:
            log.warning("shadow: event %d of %s is not a comparison record: %s", event.id, gateway_id, exc)
    return ShadowSlotStatus(
        gateway_id=gateway_id,
        line=line,
        slot=slot,
        champion=champion,
        challenger=challenger,
        phase=said.get("phase") if reports_this else None,
        error=said.get("error") if reports_this else None,
        windows=sums.windows,
        compared=sums.compared,
        skipped=sums.skipped,
        challenger_errors=sums.errors,
        agreement=sums.share(sums.agreeing),
        champion_flag_rate=sums.share(sums.champion_flags, sums.flags_known),
        challenger_flag_rate=sums.share(sums.challenger_flags, sums.flags_known),
        champion_p95_ms=sums.champion_p95,
        challenger_p95_ms=sums.challenger_p95,
        disagreement_captures=sums.captures,
        first_at=sums.first_at,
        last_at=sums.last_at,
    )
