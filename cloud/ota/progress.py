"""Where a rollout stands, gateway by gateway, read for the API with a bounded number of queries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from cloud.db.models import GatewayReported, Rollout
from cloud.ota.health import gate_values, gateway_status, reported_states, slot_of
from cloud.ota.outcomes import (
    LEFT_AS_IS,
    NEVER_LEFT,
    SENT_BACK,
    abort_counts,
    judged_status,
    outcome_text,
)
from cloud.ota.schemas import GateValue, GatewayProgress, RolloutProgress, Thresholds

BAD = ("failed", "unhealthy")
ENDED = ("completed", "aborted")


def started(row: Rollout) -> list[str]:
    """The gateways of ``row`` whose wave has started (the only ones with a status to judge)."""
    return [gw for gw, entry in row.plan.items() if entry.get("started")]


def gateway_progress(
    session: Session, row: Rollout, gw: str, now: datetime, reports: Mapping[str, GatewayReported]
) -> GatewayProgress:
    """One planned gateway: its status and the measured health gates behind it."""
    entry = row.plan[gw]
    if not entry.get("started"):
        return GatewayProgress(wave=entry["wave"] + 1, status="waiting")
    status, why = gateway_status(session, row, gw, now, reports)
    report = reports.get(gw)
    slot = slot_of(report, row.slot)
    thresholds = Thresholds.model_validate(row.thresholds)
    gates = gate_values(slot.get("health"), entry.get("baseline"), thresholds)
    return GatewayProgress(
        wave=entry["wave"] + 1,
        status=status,
        reason=why,
        phase=slot.get("phase"),
        active_version=(slot.get("active") or {}).get("version"),
        reported_at=report.timestamp if report is not None else None,
        gates=[GateValue.model_validate(g) for g in gates],
    )


def all_progress(session: Session, row: Rollout, now: datetime) -> dict[str, GatewayProgress]:
    """Every planned gateway of ``row``; the reported states are read in one query per 500 gateways.

    An ended rollout shows each gateway as it stood when the rollout ended: today's reports may
    come from another rollout since, and must not rewrite this one's outcome.
    """
    if row.state in ENDED:
        return {gw: ended_progress(row, gw) for gw in row.plan}
    reports = reported_states(session, started(row))
    return {gw: gateway_progress(session, row, gw, now, reports) for gw in row.plan}


def freeze(session: Session, row: Rollout, now: datetime) -> None:
    """Store each started gateway's outcome in the plan as the rollout ends (completed or aborted)."""
    reports = reported_states(session, started(row))
    plan = dict(row.plan)
    for gw in started(row):
        final = gateway_progress(session, row, gw, now, reports).model_dump(mode="json", exclude={"wave"})
        plan[gw] = {**plan[gw], "final": final}
    row.plan = plan


def ended_progress(row: Rollout, gw: str) -> GatewayProgress:
    """One gateway of an ended rollout: its frozen outcome, or what the rollout's end says of it.

    Rollouts that ended before outcomes were frozen carry none; they are not judged against
    today's reports either: a completed one installed every gateway, an aborted one gives its reason.
    """
    entry = row.plan[gw]
    wave = entry["wave"] + 1
    if not entry.get("started"):
        return GatewayProgress(wave=wave, status="skipped", reason="the rollout ended before this wave")
    if entry.get("final"):
        return GatewayProgress.model_validate({**entry["final"], "wave": wave})
    if row.state == "completed":
        return GatewayProgress(wave=wave, status="installed", active_version=row.version)
    return GatewayProgress(wave=wave, status="aborted", reason=row.reason)


def summaries(session: Session, rows: Iterable[Rollout], now: datetime) -> dict[str, RolloutProgress]:
    """How far each rollout got, for the list: one batch of reported states for all active ones.

    An ended rollout is not judged against today's reports (its gateways may run something else
    by now): its counts come from the outcomes frozen when it ended (see :func:`ended_progress`).
    """
    rows = list(rows)
    active = [r for r in rows if r.state not in ENDED]
    reports = reported_states(session, (gw for r in active for gw in started(r)))
    out: dict[str, RolloutProgress] = {}
    for row in rows:
        begun = started(row)
        progress = RolloutProgress(planned=len(row.plan), started=len(begun))
        if row.state in ENDED:
            ended = [ended_progress(row, gw) for gw in begun]
            statuses = [g.status for g in ended]
            if row.state == "completed":
                progress.installed = statuses.count("installed")
            else:  # none stays installed: say what the abort did instead
                counts = abort_counts(statuses)
                progress.sent_back, progress.never_left = counts[SENT_BACK], counts[NEVER_LEFT]
                progress.left_as_is = counts[LEFT_AS_IS]
                progress.outcome = outcome_text(counts)
            progress.bad = sum(1 for g in ended if judged_status(g.status, g.at_abort) in BAD)
        else:
            statuses = [gateway_status(session, row, gw, now, reports)[0] for gw in begun]
            progress.installed = statuses.count("installed")
            progress.bad = sum(1 for s in statuses if s in BAD)
        out[row.id] = progress
    return out
