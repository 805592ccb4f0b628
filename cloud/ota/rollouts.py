"""The rollout state machine: plain functions over the database, driven by Celery beat ticks.

States: running -> (paused <-> running) -> completed | aborted. A running rollout starts its
current wave (stages the new version in each gateway's desired state), then watches the wave's
reported states; when every gateway runs the new version healthily for ``bake_s`` the next wave
starts. Too many failed installs or unhealthy gateways abort it: every touched gateway gets its
previous version back with ``allow_downgrade``.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.config import CloudSettings
from cloud.db.models import Gateway, GatewayDesired, GatewayReported, ModelVersion, Rollout, RolloutEvent
from cloud.ota.desired import stage_desired
from cloud.ota.health import gateway_status, reported_states, slot_of
from cloud.ota.schemas import RolloutCreate, Thresholds, wave_sizes
from cloud.registry.service import RegistryError, offer_for
from protocol.messages import utcnow
from protocol.ota import DesiredState, ModelOffer

log = logging.getLogger(__name__)
ACTIVE_STATES = ("running", "paused")
REPUBLISH_AFTER_S = 30.0


def _event(session: Session, rollout: Rollout, kind: str, message: str, **details: Any) -> None:
    log.info("rollout %s: %s", rollout.id, message)
    session.add(RolloutEvent(rollout_id=rollout.id, at=utcnow(), kind=kind, message=message, details=details))


def _version(session: Session, name: str, version: str) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
    )


def resolve_target(session: Session, req: RolloutCreate) -> list[str]:
    """The gateway ids a request targets, sorted."""
    chosen = set(req.target.gateways)
    if req.target.has_filters:
        for gw in session.scalars(select(Gateway)):
            if req.target.line and gw.line != req.target.line:
                continue
            if req.target.site and gw.site != req.target.site:
                continue
            if not set(req.target.tags) <= set(gw.tags or []):
                continue
            chosen.add(gw.id)
    return sorted(chosen)


def _no_match(session: Session, req: RolloutCreate) -> str:
    """Why no gateway matched: each filter given, beside the values the known gateways carry."""
    known = session.execute(select(Gateway.line, Gateway.site, Gateway.tags)).all()
    if not known:
        return "the target matches no gateway: no gateway has connected yet"
    target, clauses = req.target, []
    offered = {
        "line": sorted({row.line for row in known if row.line}),
        "site": sorted({row.site for row in known if row.site}),
        "tags": sorted({tag for row in known for tag in row.tags or []}),
    }
    for name, asked in (("line", target.line), ("site", target.site), ("tags", target.tags or None)):
        if asked:
            have = ", ".join(offered[name][:10]) or "none"
            clauses.append(f"{name} {asked!r} (gateways have {name}: {have})")
    if not clauses:
        return "the target matches no gateway: give gateway ids, a line, a site or tags"
    return f"the target matches no gateway with {' and '.join(clauses)}"


def _slot_problem(session: Session, gateways: list[str], slot: str) -> str | None:
    """Why ``slot`` cannot be updated on some of ``gateways``, or None.

    A gateway updates only the slots its config declares (a new slot needs its sources wired), so
    an offer for another slot would be ignored and the rollout would abort for nothing. Gateways
    that never reported their models are given the benefit of the doubt.
    """
    lacking: dict[str, set[str]] = {}
    for gateway_id, models in session.execute(
        select(Gateway.id, Gateway.models).where(Gateway.id.in_(gateways))
    ):
        slots = {str(m["slot"]) for m in models or [] if isinstance(m, dict) and m.get("slot")}
        if slots and slot not in slots:
            lacking[gateway_id] = slots
    if not lacking:
        return None
    names = sorted(lacking)
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    have = ", ".join(sorted(set().union(*lacking.values())))
    return f"slot {slot!r} is not a model slot of {shown} (they have: {have}); pick one of those slots"


def create_rollout(session: Session, req: RolloutCreate, actor: str) -> Rollout:
    """Plan a rollout (gateways assigned to waves in id order); it starts on the next tick."""
    if _version(session, req.model_name, req.version) is None:
        raise RegistryError(404, f"model {req.model_name} version {req.version} is not in the registry")
    gateways = resolve_target(session, req)
    if not gateways:
        raise RegistryError(422, _no_match(session, req))
    problem = _slot_problem(session, gateways, req.slot)
    if problem is not None:
        raise RegistryError(422, problem)
    sizes = wave_sizes(req.waves, len(gateways))
    plan = {gw: {"wave": next(i for i, n in enumerate(sizes) if idx < n)} for idx, gw in enumerate(gateways)}
    now = utcnow()
    rollout = Rollout(
        id=uuid.uuid4().hex[:12],
        model_name=req.model_name,
        version=req.version,
        slot=req.slot,
        target=req.target.model_dump(mode="json"),
        waves=sizes,
        bake_s=req.bake_s,
        thresholds=req.thresholds.model_dump(mode="json"),
        plan=plan,
        state="running",
        wave=0,
        created_at=now,
        created_by=actor,
        updated_at=now,
    )
    session.add(rollout)
    session.flush()
    _event(
        session, rollout, "created", f"{len(gateways)} gateway(s) in {len(sizes)} wave(s) {sizes}", by=actor
    )
    return rollout


def _start_wave(
    session: Session, settings: CloudSettings, rollout: Rollout, now: datetime
) -> list[DesiredState]:
    version = _version(session, rollout.model_name, rollout.version)
    if version is None:
        raise RegistryError(404, f"model {rollout.model_name} {rollout.version} vanished from the registry")
    members = [gw for gw, p in rollout.plan.items() if p["wave"] == rollout.wave]
    plan = dict(rollout.plan)
    reports = reported_states(session, members)
    for gw in members:
        slot = slot_of(reports.get(gw), rollout.slot)
        plan[gw] = {
            **plan[gw],
            "previous": slot.get("active"),
            "baseline": slot.get("health"),
            "started": True,
        }
    offer = offer_for(settings, version)
    states = stage_desired(session, dict.fromkeys(members, offer), rollout.slot, rollout.id)
    for state in states:
        plan[state.gateway_id]["revision"] = state.revision
    rollout.plan = plan
    rollout.wave_started_at = now
    rollout.wave_healthy_since = None
    _event(
        session,
        rollout,
        "wave_started",
        f"wave {rollout.wave + 1}/{len(rollout.waves)}: {len(members)} gateway(s)",
        gateways=members,
    )
    return states


def _republish_stale(
    session: Session,
    rollout: Rollout,
    pending: list[str],
    now: datetime,
    reports: dict[str, GatewayReported],
) -> list[DesiredState]:
    """Desired states to publish again: a publish that failed after its commit (broker down,
    worker killed) would otherwise leave the wave waiting until the install timeout."""
    plan = dict(rollout.plan)
    again = []
    for gw in pending:
        last = datetime.fromisoformat(plan[gw].get("published_at") or rollout.wave_started_at.isoformat())  # type: ignore[union-attr]
        report = reports.get(gw)
        if report is not None and report.desired_revision >= plan[gw].get("revision", 0):
            continue  # the gateway has it and is working on it
        if (now - last).total_seconds() < REPUBLISH_AFTER_S:
            continue
        desired = session.get(GatewayDesired, gw)
        if desired is not None:
            again.append(DesiredState.model_validate(desired.document))
            plan[gw] = {**plan[gw], "published_at": now.isoformat()}
    if again:
        rollout.plan = plan
        _event(
            session,
            rollout,
            "republished",
            f"{len(again)} desired state(s) sent again",
            gateways=[s.gateway_id for s in again],
        )
    return again


def advance(
    session: Session, settings: CloudSettings, rollout: Rollout, now: datetime | None = None
) -> list[DesiredState]:
    """One tick of ``rollout``: the desired states to publish after the caller commits."""
    now = now or utcnow()
    if rollout.state != "running":
        return []
    if rollout.wave_started_at is None:
        return _start_wave(session, settings, rollout, now)
    thresholds = Thresholds.model_validate(rollout.thresholds)
    members = [gw for gw, p in rollout.plan.items() if p["wave"] == rollout.wave]
    reports = reported_states(session, members)
    statuses = {gw: gateway_status(session, rollout, gw, now, reports) for gw in members}
    bad = {gw: f"{s}: {why}" for gw, (s, why) in statuses.items() if s in ("failed", "unhealthy")}
    if bad and len(bad) / len(members) > thresholds.max_failure_ratio:
        return abort(
            session,
            settings,
            rollout,
            f"wave {rollout.wave + 1}: {len(bad)}/{len(members)} gateway(s) failed",
            "engine",
            bad,
        )
    pending = [gw for gw, (s, _) in statuses.items() if s == "pending"]
    if pending:
        return _republish_stale(session, rollout, pending, now, reports)
    if rollout.wave_healthy_since is None:
        rollout.wave_healthy_since = now
        _event(
            session,
            rollout,
            "wave_installed",
            f"wave {rollout.wave + 1} installed; baking {rollout.bake_s:.0f} s",
        )
    if (now - rollout.wave_healthy_since).total_seconds() < rollout.bake_s:
        return []
    if rollout.wave + 1 >= len(rollout.waves):
        rollout.state = "completed"
        rollout.updated_at = now
        _event(session, rollout, "completed", f"all {len(rollout.plan)} gateway(s) run {rollout.version}")
        return []
    rollout.wave += 1
    rollout.updated_at = now
    return _start_wave(session, settings, rollout, now)


def abort(
    session: Session,
    settings: CloudSettings,
    rollout: Rollout,
    reason: str,
    actor: str,
    details: dict[str, Any] | None = None,
) -> list[DesiredState]:
    """Stop ``rollout`` and send every touched gateway back to the version it ran before."""
    if rollout.state not in ACTIVE_STATES:
        raise RegistryError(
            409, f"rollout {rollout.id} is {rollout.state}; only a running or paused one can abort"
        )
    rollout.state = "aborted"
    rollout.reason = reason
    rollout.updated_at = utcnow()
    _event(session, rollout, "aborted", reason, by=actor, gateways=details or {})
    by_version: dict[tuple[str, str], list[str]] = {}
    for gw, entry in rollout.plan.items():
        previous = entry.get("previous")
        if not entry.get("started"):
            continue
        if not previous:
            _event(session, rollout, "rollback_skipped", f"{gw}: no previous version reported; left as is")
            continue
        by_version.setdefault((previous["name"], previous["version"]), []).append(gw)
    offers: dict[str, ModelOffer] = {}
    for (name, version), gws in by_version.items():
        row = _version(session, name, version)
        if row is None:
            _event(
                session, rollout, "rollback_skipped", f"{name} {version} is not in the registry", gateways=gws
            )
            continue
        offer = offer_for(settings, row, allow_downgrade=True)
        offers.update(dict.fromkeys(gws, offer))
    states = stage_desired(session, offers, rollout.slot, rollout.id)
    if states:
        _event(
            session, rollout, "rolled_back", f"{len(states)} gateway(s) sent back", gateways=sorted(offers)
        )
    return states


def pause(session: Session, rollout: Rollout, actor: str) -> None:
    """Hold a running rollout where it is (gateways already updated stay updated)."""
    if rollout.state != "running":
        raise RegistryError(409, f"rollout {rollout.id} is {rollout.state}; only a running one can pause")
    rollout.state = "paused"
    rollout.updated_at = utcnow()
    _event(session, rollout, "paused", f"paused by {actor}", by=actor)


def resume(session: Session, rollout: Rollout, actor: str) -> None:
    """Continue a paused rollout; the current wave bakes again from zero."""
    if rollout.state != "paused":
        raise RegistryError(409, f"rollout {rollout.id} is {rollout.state}; only a paused one can resume")
    rollout.state = "running"
    rollout.wave_healthy_since = None
    rollout.updated_at = utcnow()
    _event(session, rollout, "resumed", f"resumed by {actor}", by=actor)
