"""The Alerts page: alerts (open or all) with the operators' acknowledge, and the admins' rule forms.

What the page shows and what the rule forms send: :mod:`cloud.console.alert_rules`. The forms
send values as typed; the API's refusals are shown beside the field they name.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from cloud.console.alert_rules import alerts_context, create_body, create_defaults, field_errors, update_body
from cloud.console.api import ApiClient, ApiError
from cloud.console.deps import FormUser
from cloud.console.respond import Fields, FormPage, forward, render_page, submit_form, to_login

router = APIRouter()


async def _open_alerts(api: ApiClient, _typed: Fields) -> dict[str, Any]:
    """The Alerts page a refused rule form comes back to: the open alerts."""
    return await alerts_context(api, "open")


def _create_refusal(exc: ApiError, fields: Fields) -> dict[str, Any]:
    errors, general = field_errors(exc)
    values = {**create_defaults(), **fields}
    if "enabled" not in fields:
        values.pop("enabled")
    return {"values": values, "errors": errors, "general_errors": general}


RULE_CREATE_PAGE = FormPage("alerts.html", _open_alerts, _create_refusal)


@router.get("/alerts")
async def alerts(request: Request, show: str = "open", saved: str | None = None) -> Response:
    shown = show if show == "all" else "open"
    return await render_page(request, "alerts.html", lambda api, _u: alerts_context(api, shown, saved))


# Before the rule routes: '/alerts/rules/ack' is an acknowledgement (of an alert 'rules').
@router.post("/alerts/{alert_id}/ack")
async def alert_ack(request: Request, user: FormUser, alert_id: str) -> Response:
    if user is None:
        return to_login()
    return await forward(request, user, "POST", f"/alerts/{quote(alert_id)}/ack", "/alerts", {})


@router.post("/alerts/rules")
async def rule_create(request: Request, user: FormUser) -> Response:
    return await submit_form(
        request,
        user,
        RULE_CREATE_PAGE,
        lambda api, fields: api.post("/alert-rules", create_body(fields)),
        lambda made: f"/alerts?saved={quote(str(made['id']))}#rules",
    )


@router.post("/alerts/rules/{rule_id}")
async def rule_update(request: Request, user: FormUser, rule_id: str) -> Response:
    def refusal(exc: ApiError, fields: Fields) -> dict[str, Any]:
        errors, general = field_errors(exc)
        return {
            "edit_values": {rule_id: fields},
            "edit_errors": {rule_id: errors},
            "general_errors": [f"rule {rule_id}: {m}" for m in general],
        }

    path = f"/alert-rules/{quote(rule_id, safe='')}"
    return await submit_form(
        request,
        user,
        FormPage("alerts.html", _open_alerts, refusal),
        lambda api, fields: api.request("PATCH", path, json=update_body(fields, fields.get("kind", ""))),
        lambda _: f"/alerts?saved={quote(rule_id)}#rules",
    )


@router.post("/alerts/rules/{rule_id}/delete")
async def rule_delete(request: Request, user: FormUser, rule_id: str) -> Response:
    if user is None:
        return to_login()
    return await forward(request, user, "DELETE", f"/alert-rules/{quote(rule_id, safe='')}", "/alerts#rules")
