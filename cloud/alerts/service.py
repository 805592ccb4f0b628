"""Alert rules and alerts as the API changes them: create, delete, acknowledge (all audited)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloud.alerts.schemas import AlertRuleCreate, AlertRuleUpdate
from cloud.auth.service import Principal, audit
from cloud.db.models import Alert, AlertRule
from protocol.messages import utcnow


class NotFound(LookupError):
    """No such rule or alert; the message names it."""


def create_rule(session: Session, body: AlertRuleCreate, who: Principal) -> AlertRule:
    """Store a rule; it is evaluated from the next beat on."""
    rule = AlertRule(
        line=body.line,
        kind=body.kind.value,
        threshold=body.threshold,
        window_s=body.window_s,
        min_results=body.min_results,
        enabled=body.enabled,
        created_at=utcnow(),
        created_by=who.name,
    )
    session.add(rule)
    session.flush()
    audit(session, who, "alert_rule.create", str(rule.id), **body.model_dump(mode="json"))
    return rule


def update_rule(session: Session, rule_id: int, body: AlertRuleUpdate, who: Principal) -> AlertRule:
    """Change a rule's threshold, window, minimum or enabled flag (audited).

    The merged rule is checked with the same per-kind rules as a new one, so an edit cannot make
    a rule a new one could not be (a defect-rate rule without a window, say): pydantic's
    ``ValidationError`` says which field is wrong. Disabling a rule closes its open alerts, since
    nothing would close them any more.
    """
    rule = session.scalar(select(AlertRule).where(AlertRule.id == rule_id).with_for_update())
    if rule is None:
        raise NotFound(f"alert rule {rule_id} does not exist")
    # null keeps a field a rule always has (threshold, min_results, enabled); a null window_s
    # asks for no window, which the per-kind rules below judge.
    changes = {
        key: value
        for key, value in body.model_dump(exclude_unset=True).items()
        if value is not None or key == "window_s"
    }
    current = {
        "line": rule.line,
        "kind": rule.kind,
        "threshold": rule.threshold,
        "window_s": rule.window_s,
        "min_results": rule.min_results,
        "enabled": rule.enabled,
    }
    merged = AlertRuleCreate.model_validate({**current, **changes})
    rule.threshold = merged.threshold
    rule.window_s = merged.window_s
    rule.min_results = merged.min_results
    rule.enabled = merged.enabled
    if not merged.enabled:
        session.execute(
            update(Alert)
            .where(Alert.rule_id == rule_id, Alert.closed_at.is_(None))
            .values(closed_at=utcnow())
        )
    audit(session, who, "alert_rule.update", str(rule_id), **changes)
    return rule


def delete_rule(session: Session, rule_id: int, who: Principal) -> None:
    """Delete a rule and close its open alerts (their history stays, without the rule)."""
    rule = session.scalar(select(AlertRule).where(AlertRule.id == rule_id).with_for_update())
    if rule is None:
        raise NotFound(f"alert rule {rule_id} does not exist")
    session.execute(
        update(Alert).where(Alert.rule_id == rule_id, Alert.closed_at.is_(None)).values(closed_at=utcnow())
    )
    # Explicitly, not by the FK's SET NULL: SQLite enforces foreign keys only when asked to.
    session.execute(update(Alert).where(Alert.rule_id == rule_id).values(rule_id=None))
    audit(session, who, "alert_rule.delete", str(rule_id), line=rule.line, kind=rule.kind)
    session.delete(rule)


def acknowledge(session: Session, alert_id: int, who: Principal) -> Alert:
    """Record who acknowledged an alert and when; a second acknowledgement keeps the first."""
    alert = session.scalar(select(Alert).where(Alert.id == alert_id).with_for_update())
    if alert is None:
        raise NotFound(f"alert {alert_id} does not exist")
    if alert.acknowledged_at is None:
        alert.acknowledged_by = who.name
        alert.acknowledged_at = utcnow()
        audit(session, who, "alert.ack", str(alert_id), line=alert.line, kind=alert.kind)
    return alert
