"""Judging one gateway of a rollout wave from its reported state: installed, pending, failed or unhealthy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import GatewayReported, Rollout
from cloud.ota.schemas import Thresholds
from protocol.rate_shift import SHIFT_Z, RateShift, parts_behind

FAILED_PHASES = ("failed", "rolled_back")
BUSY_PHASES = ("downloading", "verifying", "smoke_testing", "swapping", "health_window")
# Ids per IN (...) list: well under every driver's bound-parameter limit (SQLite's is 32766,
# older builds 999), so a rollout of thousands of gateways costs a handful of queries, not one each.
IDS_PER_QUERY = 500


def reported_states(session: Session, gateway_ids: Iterable[str]) -> dict[str, GatewayReported]:
    """The stored reported state of each of ``gateway_ids`` that has one, in few queries.

    Judging a wave gateway by gateway would otherwise cost one query per gateway (and
    ``session.get`` queries again for every gateway that never reported).
    """
    ids = sorted(set(gateway_ids))
    found: dict[str, GatewayReported] = {}
    for start in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[start : start + IDS_PER_QUERY]
        query = select(GatewayReported).where(GatewayReported.gateway_id.in_(chunk))
        found.update((row.gateway_id, row) for row in session.scalars(query))
    return found


def slot_of(report: GatewayReported | None, slot: str) -> dict[str, Any]:
    """The reported slot as stored (empty when the gateway never reported it)."""
    if report is None:
        return {}
    value: dict[str, Any] = report.slots.get(slot) or {}
    return value


def health_problem(
    health: dict[str, Any] | None, baseline: dict[str, Any] | None, t: Thresholds
) -> str | None:
    if not health or health.get("inferences", 0) < max(t.min_inferences, 1):
        return None
    inferences = health["inferences"]
    if t.max_error_rate is not None and health.get("errors", 0) / inferences > t.max_error_rate:
        return f"error rate {health['errors'] / inferences:.3f} > {t.max_error_rate}"
    p95 = health.get("p95_latency_ms")
    if t.max_p95_latency_ms is not None and p95 is not None and p95 > t.max_p95_latency_ms:
        return f"p95 latency {p95:.4g} ms > max {t.max_p95_latency_ms:g} ms"
    base = baseline or {}
    shift, limit = defect_rate_shift(health, base), t.max_defect_rate_shift
    if limit is not None and shift is not None and _enough_parts(shift, t) and shift.beyond(limit):
        return f"defect rate {shift.describe()}: beyond ±{100 * limit:g} pts and sampling noise"
    conf, base_conf = health.get("mean_confidence"), base.get("mean_confidence")
    drop = t.max_confidence_drop
    if drop is not None and conf is not None and base_conf is not None and base_conf - conf > drop:
        return f"mean confidence {conf:.3f} vs {base_conf:.3f} before the update (drop > max {drop:g})"
    return None


def defect_rate_shift(health: dict[str, Any] | None, baseline: dict[str, Any] | None) -> RateShift | None:
    """The defect rate before and since the update with the parts behind each (None: one is missing)."""
    now, before = (health or {}).get("defect_rate"), (baseline or {}).get("defect_rate")
    if now is None or before is None:
        return None
    return RateShift(
        before=before,
        parts_before=parts_behind(int((baseline or {}).get("inferences") or 0)),
        now=now,
        parts_now=parts_behind(int((health or {}).get("inferences") or 0)),
    )


def _enough_parts(shift: RateShift, t: Thresholds) -> bool:
    return min(shift.parts_before, shift.parts_now) >= t.min_defect_rate_parts


def parts_awaited(
    health: dict[str, Any] | None, baseline: dict[str, Any] | None, t: Thresholds
) -> str | None:
    """Why the defect-rate gate still waits for the new model to see more parts, or None.

    A wave would otherwise bake and complete before the gate could tell a shift from noise, and a
    model that flags less would pass unjudged. A baseline with too few parts never gets more (the
    old model no longer runs): that gateway is not waited for (see :func:`short_baselines`).
    """
    shift = defect_rate_shift(health, baseline)
    if t.max_defect_rate_shift is None or shift is None or shift.parts_before < t.min_defect_rate_parts:
        return None
    if shift.parts_now >= t.min_defect_rate_parts:
        return None
    return f"defect-rate gate: {shift.parts_now} of {t.min_defect_rate_parts} parts seen since the update"


def short_baselines(baselines: Mapping[str, dict[str, Any] | None], t: Thresholds) -> str | None:
    """A notice naming the gateways whose defect-rate shift cannot be judged: too few parts seen
    before the update to tell a shift from noise. Without it such a gateway would pass in silence."""
    if t.max_defect_rate_shift is None:
        return None
    short = {
        gw: parts_behind(int(base.get("inferences") or 0))
        for gw, base in sorted(baselines.items())
        if base and base.get("defect_rate") is not None
    }
    short = {gw: parts for gw, parts in short.items() if parts < t.min_defect_rate_parts}
    if not short:
        return None
    named = ", ".join(f"{gw} ({parts})" for gw, parts in list(short.items())[:5])
    more = f" and {len(short) - 5} more" if len(short) > 5 else ""
    return (
        f"the defect-rate gate cannot judge {named}{more}: parts seen before the update, "
        f"{t.min_defect_rate_parts} needed to tell a change from noise; compare the line's defect "
        "rate before and after yourself"
    )


def gateway_status(
    session: Session,
    rollout: Rollout,
    gw: str,
    now: datetime,
    reports: Mapping[str, GatewayReported] | None = None,
) -> tuple[str, str | None]:
    """('installed'|'pending'|'failed'|'unhealthy', reason) of one started gateway.

    Installed means committed on the target: a gateway still in its health window is pending
    (or unhealthy, when the rollout's own gates already see a problem).

    ``reports``: the wave's reported states from :func:`reported_states` (a gateway missing from
    it never reported); without it the gateway's state is read on its own.
    """
    entry = rollout.plan[gw]
    report = reports.get(gw) if reports is not None else session.get(GatewayReported, gw)
    slot = slot_of(report, rollout.slot)
    active = slot.get("active") or {}
    target = {"name": rollout.model_name, "version": rollout.version}
    thresholds = Thresholds.model_validate(rollout.thresholds)
    on_target = active.get("name") == target["name"] and active.get("version") == target["version"]
    acted = report is not None and report.desired_revision >= entry.get("revision", 1 << 62)
    phase = slot.get("phase")
    if on_target and phase not in FAILED_PHASES:
        problem = health_problem(slot.get("health"), entry.get("baseline"), thresholds)
        if problem:
            return "unhealthy", problem
        # Running the target is not installed yet: during its own health window the gateway may
        # still roll back, so only a committed (no longer busy) slot counts.
        if phase not in BUSY_PHASES:
            awaited = parts_awaited(slot.get("health"), entry.get("baseline"), thresholds)
            # Committed but not yet judged: pending with no install timeout (it has installed),
            # so the wave waits for the parts instead of failing the gateway.
            return ("installed", None) if awaited is None else ("pending", awaited)
    elif acted and phase not in BUSY_PHASES:
        return "failed", slot.get("error") or f"phase {phase}, active {active.get('version')}"
    started = rollout.wave_started_at or now
    if (now - started).total_seconds() > thresholds.install_timeout_s:
        still = f" (still {phase})" if on_target else ""
        return "failed", f"not installed after {thresholds.install_timeout_s:.0f} s{still}"
    return "pending", None


def gate_values(
    health: dict[str, Any] | None, baseline: dict[str, Any] | None, t: Thresholds
) -> list[dict[str, Any]]:
    """Each health gate of one gateway with the measured value next to its limit.

    Mirrors :func:`health_problem` gate by gate, so an operator sees why a gateway is judged
    healthy or not. ``ok`` is None where the gate is not judged (no limit, no value, or too few
    inferences yet: the engine waits for ``min_inferences`` before judging anything, and for
    ``min_defect_rate_parts`` on both sides before judging the defect-rate shift; its ``note`` says which).
    """
    health = health or {}
    base = baseline or {}
    inferences = int(health.get("inferences") or 0)
    needed = max(t.min_inferences, 1)
    judged = inferences >= needed

    def gate(
        name: str, measured: float | None, limit: float | None, ok: bool, **extra: Any
    ) -> dict[str, Any]:
        verdict = ok if judged and limit is not None and measured is not None else None
        return {"gate": name, "measured": measured, "limit": limit, "ok": verdict, **extra}

    errors = health.get("errors")
    error_rate = errors / inferences if inferences and errors is not None else None
    p95 = health.get("p95_latency_ms")
    conf, base_conf = health.get("mean_confidence"), base.get("mean_confidence")
    drop = base_conf - conf if conf is not None and base_conf is not None else None
    return [
        {"gate": "min_inferences", "measured": inferences, "limit": needed, "ok": judged},
        gate("max_error_rate", error_rate, t.max_error_rate, _within(error_rate, t.max_error_rate)),
        gate("max_p95_latency_ms", p95, t.max_p95_latency_ms, _within(p95, t.max_p95_latency_ms)),
        _shift_gate(health, base, t, judged),
        gate(
            "max_confidence_drop",
            drop,
            t.max_confidence_drop,
            _within(drop, t.max_confidence_drop),
            now=conf,
            before=base_conf,
        ),
    ]


def _shift_gate(health: dict[str, Any], base: dict[str, Any], t: Thresholds, judged: bool) -> dict[str, Any]:
    """The defect-rate gate: the size of the change, judged once both sides saw enough parts."""
    shift, limit = defect_rate_shift(health, base), t.max_defect_rate_shift
    value: dict[str, Any] = {"gate": "max_defect_rate_shift", "measured": None, "limit": limit, "ok": None,
                             "now": health.get("defect_rate"), "before": base.get("defect_rate"), "note": None}  # fmt: skip
    if shift is not None:
        value["measured"] = abs(shift.points)
    if shift is None or limit is None:
        return value  # nothing to compare, or the gate is off: the change shows, nothing is judged
    needed = t.min_defect_rate_parts
    if shift.parts_before < needed:
        value["note"] = f"not judged: {shift.parts_before} parts before the update, {needed} needed"
    elif shift.parts_now < needed:
        value["note"] = f"not judged yet: {shift.parts_now} of {needed} parts since the update"
    else:
        value["note"] = (
            f"on {shift.parts_now} parts now, {shift.parts_before} before: z {shift.z:+.1f} "
            f"(noise unless beyond ±{SHIFT_Z:g})"
        )
        if judged:
            value["ok"] = not shift.beyond(limit)
    return value


def _within(measured: float | None, limit: float | None) -> bool:
    # The same comparison as health_problem: only strictly above the limit fails.
    return measured is None or limit is None or measured <= limit
