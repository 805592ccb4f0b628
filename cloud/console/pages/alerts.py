"""The Alerts page: alerts (open or all) with the operators' acknowledge, and the admins' rule forms.

What the page shows and what the rule forms send: :mod:`cloud.console.alert_rules`. The forms
send values as typed; the API's refusals are shown beside the field they name.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from cloud.console.alert_rules import alerts_context, create_body, create_defaults, field_errors, update_body
from cloud.console.api import ApiClient, ApiError
from cloud.console.deps import FormUser
from cloud.console.respond import forward, refused_form, render_page, to_login
from cloud.console.session import User, form

router = APIRouter()


async def refused(
    request: Request, user: User, api: ApiClient, exc: ApiError, apply: dict[str, Any]
) -> Response:
    """The Alerts page again, with the API's errors beside the form and the typed values."""
    return await refused_form(request, user, exc, "alerts.html", lambda: alerts_context(api, "open"), apply)


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
    if user is None:
        return to_login()
    fields = await form(request)
    async with ApiClient(request.app, user.token) as api:
        try:
            made = await api.post("/alert-rules", create_body(fields))
        except ApiError as exc:
            errors, general = field_errors(exc)
            values = {**create_defaults(), **fields}
            if "enabled" not in fields:
                values.pop("enabled")
            apply = {"values": values, "errors": errors, "general_errors": general}
            return await refused(request, user, api, exc, apply)
    return RedirectResponse(f"/alerts?saved={quote(str(made['id']))}#rules", status_code=303)


@router.post("/alerts/rules/{rule_id}")
async def rule_update(request: Request, user: FormUser, rule_id: str) -> Response:
    if user is None:
        return to_login()
    fields = await form(request)
    path = f"/alert-rules/{quote(rule_id, safe='')}"
    async with ApiClient(request.app, user.token) as api:
        try:
            await api.request("PATCH", path, json=update_body(fields, fields.get("kind", "")))
        except ApiError as exc:
            errors, general = field_errors(exc)
            apply = {
                "edit_values": {rule_id: fields},
                "edit_errors": {rule_id: errors},
                "general_errors": [f"rule {rule_id}: {m}" for m in general],
            }
            return await refused(request, user, api, exc, apply)
    return RedirectResponse(f"/alerts?saved={quote(rule_id)}#rules", status_code=303)


@router.post("/alerts/rules/{rule_id}/delete")
async def rule_delete(request: Request, user: FormUser, rule_id: str) -> Response:
    if user is None:
        return to_login()
    return await forward(request, user, "DELETE", f"/alert-rules/{quote(rule_id, safe='')}", "/alerts#rules")
