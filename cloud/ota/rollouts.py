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
from cloud.db.models import GatewayDesired, GatewayReported, ModelVersion, Rollout, RolloutEvent
from cloud.ota.desired import stage_desired
from cloud.ota.health import gateway_status, reported_states, short_baselines, slot_of
from cloud.ota.installed import already_notice, already_running, downgrade_problem
from cloud.ota.outcomes import mark_aborted
from cloud.ota.planning import (
    ACTIVE_STATES,
    choose_slot,
    no_match,
    overlap_problem,
    resolve_target,
    serialize_creates,
    slot_problem,
    slot_use,
    task_problem,
    unknown_gateways,
)
from cloud.ota.progress import freeze
from cloud.ota.schemas import RolloutCreate, Thresholds, wave_sizes
from cloud.registry.service import RegistryError, offer_for
from protocol.messages import utcnow
from protocol.ota import DesiredState, ModelOffer

log = logging.getLogger(__name__)
REPUBLISH_AFTER_S = 30.0


def _event(session: Session, rollout: Rollout, kind: str, message: str, **details: Any) -> None:
    log.info("rollout %s: %s", rollout.id, message)
    session.add(RolloutEvent(rollout_id=rollout.id, at=utcnow(), kind=kind, message=message, details=details))


def _version(session: Session, name: str, version: str) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
    )


def create_rollout(session: Session, req: RolloutCreate, actor: str) -> Rollout:
    """Plan a rollout (gateways assigned to waves in id order); it starts on the next tick.

    Refused (RegistryError) when it could never finish: unknown version or gateway ids, no slot
    that fits the model, a version not above what a gateway's slot runs (anti-rollback), a slot
    another running or paused rollout is updating (409). Gateways that already run the version
    stay in the plan, named by a "notice" event (the response's log and factoryctl show it).
    """
    serialize_creates(session)  # before any check: a create in flight must see the one before it
    version = _version(session, req.model_name, req.version)
    if version is None:
        raise RegistryError(404, f"model {req.model_name} version {req.version} is not in the registry")
    unknown = unknown_gateways(session, req)
    if unknown is not None:
        raise RegistryError(422, unknown)
    gateways = resolve_target(session, req)
    if not gateways:
        raise RegistryError(422, no_match(session, req))
    use = slot_use(session, gateways)
    slot = choose_slot(req, version, use, gateways)
    problem = slot_problem(use, slot) or task_problem(use, slot, req.model_name, version.task)
    if problem is not None:
        raise RegistryError(422, problem)
    running = use.active.get(slot, {})  # gateways that told neither are given the benefit of the doubt
    downgrade = downgrade_problem(running, slot, req.model_name, req.version)
    if downgrade is not None:
        raise RegistryError(422, downgrade)
    overlap = overlap_problem(session, gateways, slot)
    if overlap is not None:
        raise RegistryError(409, overlap)
    already = already_running(running, req.model_name, req.version)
    try:
        sizes = wave_sizes(req.waves, len(gateways))
    except ValueError as exc:
        raise RegistryError(422, f"waves: {exc}") from None
    plan = {gw: {"wave": next(i for i, n in enumerate(sizes) if idx < n)} for idx, gw in enumerate(gateways)}
    now = utcnow()
    rollout = Rollout(
        id=uuid.uuid4().hex[:12],
        model_name=req.model_name,
        version=req.version,
        slot=slot,
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
    if already:
        # Not refused, even when every gateway runs it: such a rollout costs nothing (a gateway
        # ignores an offer of what it serves) and completes as the gateways report it committed.
        notice = already_notice(already, req.model_name, req.version)
        _event(session, rollout, "notice", notice, gateways=already)
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
    states = stage_desired(session, settings, dict.fromkeys(members, offer), rollout.slot, rollout.id)
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
    thresholds = Thresholds.model_validate(rollout.thresholds)
    unjudged = short_baselines({gw: plan[gw]["baseline"] for gw in members}, thresholds)
    if unjudged is not None:
        _event(session, rollout, "notice", unjudged)
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
        # The first failure in the reason: the list shows why (a refused key, anti-rollback) at a glance.
        first = min(bad)
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        reason = f"wave {rollout.wave + 1}: {len(bad)}/{len(members)} gateway(s) failed ({first} {bad[first]}{more})"
        return abort(session, settings, rollout, reason, "engine", bad)
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
        freeze(session, rollout, now)
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
    # Judged before the state changes: the outcome is what the gateways reported until now.
    freeze(session, rollout, utcnow())
    rollout.state = "aborted"
    rollout.reason = reason
    rollout.updated_at = utcnow()
    _event(session, rollout, "aborted", reason, by=actor, gateways=details or {})
    by_version: dict[tuple[str, str], list[str]] = {}
    skipped: dict[str, str] = {}
    for gw, entry in rollout.plan.items():
        previous = entry.get("previous")
        if not entry.get("started"):
            continue
        if not previous:
            skipped[gw] = "no previous version reported"
            _event(session, rollout, "rollback_skipped", f"{gw}: no previous version reported; left as is")
            continue
        by_version.setdefault((previous["name"], previous["version"]), []).append(gw)
    offers: dict[str, ModelOffer] = {}
    sent: dict[str, str] = {}
    for (name, version), gws in by_version.items():
        row = _version(session, name, version)
        if row is None:
            skipped.update(dict.fromkeys(gws, f"{name} {version} is not in the registry"))
            _event(
                session, rollout, "rollback_skipped", f"{name} {version} is not in the registry", gateways=gws
            )
            continue
        offer = offer_for(settings, row, allow_downgrade=True)
        offers.update(dict.fromkeys(gws, offer))
        sent.update(dict.fromkeys(gws, f"{name} {version}"))
    mark_aborted(rollout, sent, skipped)
    states = stage_desired(session, settings, offers, rollout.slot, rollout.id)
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
