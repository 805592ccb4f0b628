"""Alert rules and their evaluation: a plain function the Celery beat task calls.

Each rule watches one line and yields the subjects for which its condition holds now: the line
itself (defect rate) or each of its gateways (offline, outbox backlog, model drift). An alert opens when a
subject starts holding and closes when it stops; at most one alert per rule and subject is open,
because evaluation of a rule holds its row lock (concurrent beats wait instead of duplicating).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.models import Alert, AlertRule, Gateway, Result
from cloud.drift import SlotVerdict, gateway_verdicts
from protocol.messages import utcnow

log = logging.getLogger(__name__)


class RuleKind(StrEnum):
    """What a rule watches; ``threshold`` and ``window_s`` mean different things per kind."""

    DEFECT_RATE = "defect_rate"  # percent of defective results over the last window_s seconds
    GATEWAY_OFFLINE = "gateway_offline"  # seconds since a gateway of the line was last heard
    OUTBOX_BACKLOG = "outbox_backlog"  # items waiting in a gateway's outbox (latest telemetry)
    # The drift level at which a gateway of the line alerts: 2 when a slot's drift is confirmed
    # (the default), 1 already when suspected; no window (the gateway's own window decides). One
    # alert per gateway while any slot is at that level; its value is the highest level (see
    # cloud.drift for which report, telemetry or event, decides a slot's state).
    MODEL_DRIFT = "model_drift"


# The threshold of a model_drift rule is a drift level (cloud.drift.LEVELS).
DRIFT_LEVELS = {1: "suspected", 2: "confirmed"}
DEFAULT_DRIFT_LEVEL = 2


@dataclass(frozen=True, slots=True)
class Firing:
    """A subject for which a rule's condition holds, with the measured value."""

    subject: str
    gateway_id: str | None
    value: float
    message: str


@dataclass(frozen=True, slots=True)
class EvaluationOutcome:
    """What one evaluation pass did."""

    rules: int
    opened: int
    closed: int
    failed: int = 0  # rules whose evaluation raised (logged); the others were evaluated

    def as_dict(self) -> dict[str, int]:
        """JSON-friendly form (the Celery task's return value)."""
        return {"rules": self.rules, "opened": self.opened, "closed": self.closed}


def _defect_rate(session: Session, rule: AlertRule, now: datetime) -> list[Firing]:
    window = rule.window_s or 0.0
    since = now - timedelta(seconds=window)
    total, defects = session.execute(
        select(
            func.count(), func.coalesce(func.sum(case((Result.is_defect.is_(True), 1), else_=0)), 0)
        ).where(
            Result.line == rule.line,
            Result.is_defect.is_not(None),
            Result.captured_at >= since,
            Result.captured_at <= now,
        )
    ).one()
    if total < rule.min_results:
        return []  # too few parts to call a rate: one scratch in two parts is not 50 %
    rate = 100.0 * defects / total
    if rate <= rule.threshold:
        return []
    message = (
        f"defect rate on {rule.line} is {rate:.1f}% ({defects}/{total}) over {window:g} s, "
        f"above {rule.threshold:g}%"
    )
    return [Firing(rule.line, None, rate, message)]


def _gateways(session: Session, line: str) -> list[Gateway]:
    return list(session.scalars(select(Gateway).where(Gateway.line == line).order_by(Gateway.id)))


def _offline(session: Session, rule: AlertRule, now: datetime) -> list[Firing]:
    # Silence counts as well as a death message: a gateway whose power failed with its broker
    # link may leave no last will behind. The threshold should exceed the telemetry interval.
    out = []
    for gw in _gateways(session, rule.line):
        silent_s = (now - gw.last_seen).total_seconds()
        if silent_s > rule.threshold:
            state = "offline" if not gw.online else "silent"
            message = f"gateway {gw.id} on {rule.line} {state} for {silent_s:.0f} s (> {rule.threshold:g} s)"
            out.append(Firing(gw.id, gw.id, silent_s, message))
    return out


def _backlog(session: Session, rule: AlertRule, now: datetime) -> list[Firing]:
    out = []
    for gw in _gateways(session, rule.line):
        depth = (gw.telemetry or {}).get("outbox_depth")
        if isinstance(depth, int) and depth > rule.threshold:
            message = f"gateway {gw.id} on {rule.line} holds {depth} unsent result(s) (> {rule.threshold:g})"
            out.append(Firing(gw.id, gw.id, float(depth), message))
    return out


def _model_drift(session: Session, rule: AlertRule, now: datetime) -> list[Firing]:
    gateways = _gateways(session, rule.line)
    out = []
    for gw_id, slots in gateway_verdicts(session, gateways).items():
        drifting = [v for v in slots if v.level >= rule.threshold and v.level > 0]
        if drifting:
            level = float(max(v.level for v in drifting))
            out.append(Firing(gw_id, gw_id, level, drift_message(rule.line, drifting)))
    return out


def drift_message(line: str, drifting: list[SlotVerdict]) -> str:
    """'model drift on line-1 (gw-1, slot camera-1, defect-patchcore 1.1.0): light/colour moved
    (warmth up, brightness up), scores up 3.1x', then '; slot camera-2 (...): ...' per further slot."""
    confirmed = any(v.state == "confirmed" for v in drifting)
    clauses: list[str] = []
    for v in drifting:
        about = [v.model] if v.model else []
        if confirmed and v.state != "confirmed":
            about.append(v.state)  # a rule at level 1 names the slots only suspected
        if not clauses:
            clauses.append(f"({', '.join([v.gateway_id, f'slot {v.slot}', *about])}): {v.summary}")
        else:
            extra = f" ({', '.join(about)})" if about else ""
            clauses.append(f"slot {v.slot}{extra}: {v.summary}")
    head = "model drift" if confirmed else "model drift suspected"
    return f"{head} on {line} {'; '.join(clauses)}"


_CHECKS = {
    RuleKind.DEFECT_RATE: _defect_rate,
    RuleKind.GATEWAY_OFFLINE: _offline,
    RuleKind.OUTBOX_BACKLOG: _backlog,
    RuleKind.MODEL_DRIFT: _model_drift,
}


def evaluate_rule(session: Session, rule: AlertRule, now: datetime) -> tuple[int, int]:
    """Open and close the alerts of one (locked) rule; return (opened, closed)."""
    firing = {f.subject: f for f in _CHECKS[RuleKind(rule.kind)](session, rule, now)}
    open_alerts = {
        a.subject: a
        for a in session.scalars(select(Alert).where(Alert.rule_id == rule.id, Alert.closed_at.is_(None)))
    }
    opened = closed = 0
    for subject, alert in open_alerts.items():
        if subject not in firing:
            alert.closed_at = now
            closed += 1
            log.info("alert %d closed: %s no longer holds for %s", alert.id, rule.kind, subject)
        else:
            alert.value = firing[subject].value  # the open alert follows the live value
    for subject, fire in firing.items():
        if subject in open_alerts:
            continue
        session.add(
            Alert(
                rule_id=rule.id,
                line=rule.line,
                gateway_id=fire.gateway_id,
                subject=subject,
                kind=rule.kind,
                message=fire.message,
                value=fire.value,
                opened_at=now,
            )
        )
        opened += 1
        log.warning("alert opened: %s", fire.message)
    return opened, closed


def evaluate_all(sessions: sessionmaker[Session], now: datetime | None = None) -> EvaluationOutcome:
    """Evaluate every rule, each in its own transaction holding the rule's row lock."""
    at = now or utcnow()
    with sessions() as session:
        ids = list(
            session.scalars(select(AlertRule.id).where(AlertRule.enabled.is_(True)).order_by(AlertRule.id))
        )
    opened = closed = failed = 0
    for rule_id in ids:
        try:
            with sessions.begin() as session:
                rule = session.scalar(select(AlertRule).where(AlertRule.id == rule_id).with_for_update())
                if rule is None or not rule.enabled:
                    continue  # deleted or disabled since the list was read
                o, c = evaluate_rule(session, rule, at)
                opened += o
                closed += c
        except Exception:  # noqa: BLE001 - one rule's fault must not silence every rule after it
            log.exception("alert rule %d: evaluation failed; the other rules are evaluated", rule_id)
            failed += 1
    return EvaluationOutcome(rules=len(ids), opened=opened, closed=closed, failed=failed)
