"""Alerts and alert rules: viewers read, operators acknowledge, admins manage rules."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import select

from cloud.alerts import service
from cloud.alerts.schemas import AlertPublic, AlertRuleCreate, AlertRulePublic, AlertRuleUpdate
from cloud.api.auth import Admin, Operator, Viewer
from cloud.api.deps import SessionDep
from cloud.api.params import RowId
from cloud.db.models import Alert, AlertRule

router = APIRouter(tags=["alerts"])
MAX_LIMIT = 1000


@router.get("/alerts")
def list_alerts(
    session: SessionDep,
    who: Viewer,
    state: Annotated[Literal["open", "all"], Query(description="Only open alerts, or all")] = "open",
    line: Annotated[str | None, Query(description="Only alerts of this line")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most recent first")] = 200,
) -> list[AlertPublic]:
    """Alerts, newest first."""
    query = select(Alert).order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(limit)
    if state == "open":
        query = query.where(Alert.closed_at.is_(None))
    if line is not None:
        query = query.where(Alert.line == line)
    return [AlertPublic.model_validate(a) for a in session.scalars(query)]


@router.post("/alerts/{alert_id}/ack", responses={404: {"description": "Unknown alert"}})
def acknowledge_alert(alert_id: RowId, session: SessionDep, who: Operator) -> AlertPublic:
    """Acknowledge an alert (operator or admin); records who and when, audited."""
    try:
        alert = service.acknowledge(session, alert_id, who)
    except service.NotFound as exc:
        raise HTTPException(404, detail=str(exc)) from None
    session.commit()
    return AlertPublic.model_validate(alert)


@router.get("/alert-rules")
def list_rules(
    session: SessionDep,
    who: Viewer,
    line: Annotated[str | None, Query(description="Only rules of this line")] = None,
) -> list[AlertRulePublic]:
    """Alert rules by id."""
    query = select(AlertRule).order_by(AlertRule.id)
    if line is not None:
        query = query.where(AlertRule.line == line)
    return [AlertRulePublic.model_validate(r) for r in session.scalars(query)]


@router.post("/alert-rules", status_code=201)
def create_rule(body: AlertRuleCreate, session: SessionDep, who: Admin) -> AlertRulePublic:
    """Create a rule (admin; audited)."""
    rule = service.create_rule(session, body, who)
    session.commit()
    return AlertRulePublic.model_validate(rule)


@router.patch("/alert-rules/{rule_id}", responses={404: {"description": "Unknown rule"}})
def update_rule(rule_id: RowId, body: AlertRuleUpdate, session: SessionDep, who: Admin) -> AlertRulePublic:
    """Change a rule's threshold, window, minimum or enabled flag (admin; audited)."""
    try:
        rule = service.update_rule(session, rule_id, body, who)
    except service.NotFound as exc:
        raise HTTPException(404, detail=str(exc)) from None
    except ValidationError as exc:
        # The merged rule broke a per-kind rule: answer like a bad body, naming the field.
        session.rollback()
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
    session.commit()
    return AlertRulePublic.model_validate(rule)


@router.delete("/alert-rules/{rule_id}", status_code=204, responses={404: {"description": "Unknown rule"}})
def delete_rule(rule_id: RowId, session: SessionDep, who: Admin) -> Response:
    """Delete a rule and close its open alerts (admin; audited)."""
    try:
        service.delete_rule(session, rule_id, who)
    except service.NotFound as exc:
        raise HTTPException(404, detail=str(exc)) from None
    session.commit()
    return Response(status_code=204)
