"""The Alerts page's rule forms: admins create, edit and delete rules per line through the API.

The forms send values as typed; the API alone validates them, and its answers are shown next to
the field they name with the typed values kept. Roles below admin are offered no form, and the
API refuses them (403) if they post one anyway.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from cloud.alerts.rules import RuleKind
from cloud.alerts.schemas import AlertRuleCreate
from cloud.console import respond
from cloud.console.api import ApiClient, ApiError
from cloud.console.session import User, check_origin, current_user, form

# What a rule's threshold (and window) mean per kind, shown beside the form.
KIND_HELP = {
    RuleKind.DEFECT_RATE.value: "threshold: percent defective (0-100) over the window",
    RuleKind.GATEWAY_OFFLINE.value: "threshold: seconds a gateway of the line has not been heard",
    RuleKind.OUTBOX_BACKLOG.value: "threshold: results waiting in a gateway's outbox",
}
CREATE_FIELDS = ("line", "kind", "threshold", "window_s", "min_results")


def create_defaults() -> dict[str, str]:
    """The create form's initial values (the API's own defaults)."""
    return {
        "line": "",
        "kind": RuleKind.DEFECT_RATE.value,
        "threshold": "",
        "window_s": "",
        "min_results": str(AlertRuleCreate.model_fields["min_results"].default),
        "enabled": "on",
    }


async def alerts_context(api: ApiClient, show: str) -> dict[str, Any]:
    """Alerts (open or all), rules, and what the rule forms offer."""
    alerts = await api.get_or(None, "/alerts", state=show)
    rules = await api.get_or(None, "/alert-rules")
    lines = sorted({entry["line"] for entry in await api.get("/lines")} | {r["line"] for r in rules or []})
    return {
        "alerts": alerts,
        "rules": rules,
        "show": show,
        "lines": lines,
        "kinds": [k.value for k in RuleKind],
        "kind_help": KIND_HELP,
        "values": create_defaults(),
        "errors": {},
        "general_errors": [],
        "edit_values": {},
        "edit_errors": {},
    }


def create_body(f: dict[str, str]) -> dict[str, Any]:
    """The API request of the create form; empty optional fields are left to the API's defaults.

    Window and minimum apply to defect-rate rules only; for other kinds the form's leftovers in
    those fields are not sent (the form shows one set of fields for every kind).
    """
    kind = f.get("kind", "")
    body: dict[str, Any] = {
        "line": f.get("line", "").strip(),
        "kind": kind,
        "threshold": f.get("threshold", "").strip(),
        "enabled": "enabled" in f,
    }
    if kind == RuleKind.DEFECT_RATE.value:
        for name in ("window_s", "min_results"):
            if f.get(name, "").strip():
                body[name] = f[name].strip()
    return body


def update_body(f: dict[str, str], kind: str) -> dict[str, Any]:
    """The API request of a rule's edit form (a window only for the kinds that have one)."""
    body: dict[str, Any] = {"threshold": f.get("threshold", "").strip(), "enabled": "enabled" in f}
    if kind == RuleKind.DEFECT_RATE.value:
        body["window_s"] = f.get("window_s", "").strip() or None
    return body


# The form's words for each field, used in the error messages shown beside them.
FIELD_NAMES = {"line": "Line", "kind": "Kind", "threshold": "Threshold", "window_s": "Window",
               "min_results": "Min. results", "enabled": "Enabled"}  # fmt: skip


def plain_error(name: str, err: dict[str, Any], msg: str) -> str:
    """One API validation error in plain words naming the form field ('Threshold must be a number')."""
    field = FIELD_NAMES.get(name, name or "This rule")
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    if kind in ("missing", "string_too_short") or (
        kind == "string_pattern_mismatch" and err.get("input") == ""
    ):
        return f"{field} is required"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return f"{field} must be a number"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{field} must be a whole number"
    bounds = {"greater_than_equal": "at least", "greater_than": "more than",
              "less_than_equal": "at most", "less_than": "less than"}  # fmt: skip
    if kind in bounds:
        limit = next(iter(ctx.values()), "")
        return (
            f"{field} must be {bounds[kind]} {limit:g}"
            if isinstance(limit, int | float)
            else f"{field}: {msg}"
        )
    if kind in ("enum", "literal_error"):
        return f"{field} must be {ctx.get('expected', 'one of the offered values')}"
    if kind == "string_pattern_mismatch":
        return f"{field} must start with a letter or digit and hold only letters, digits and . _ : -"
    if kind == "string_too_long":
        return f"{field} is too long (at most {ctx.get('max_length', '?')} characters)"
    # Per-kind checks start with the field they are about ("window_s: a defect_rate rule needs ...").
    return f"{field}: {msg.removeprefix(name + ': ')}" if name else msg


def field_errors(exc: ApiError) -> tuple[dict[str, str], list[str]]:
    """The API's refusal as (messages per form field, messages about the whole form)."""
    fields: dict[str, str] = {}
    general: list[str] = []
    if not isinstance(exc.errors, list):
        return fields, [exc.detail]
    for err in exc.errors:
        loc = [str(part) for part in err.get("loc", []) if part != "body"]
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        name = loc[0] if loc else ""
        if not name:
            # Per-kind checks name their field first ("window_s: a defect_rate rule needs ...").
            head, sep, _ = msg.partition(":")
            name = head if sep and head in CREATE_FIELDS else ""
        if name in CREATE_FIELDS or name == "enabled":
            msg = plain_error(name, err, msg)
            fields[name] = f"{fields[name]}; {msg}" if name in fields else msg
        else:
            general.append(f"{'.'.join(loc) or 'rule'}: {msg}")
    return fields, general


def add_rule_forms(router: APIRouter, views: Jinja2Templates) -> None:
    """Register the rule forms' POST routes on ``router``."""

    def error_page(request: Request, user: User, exc: ApiError) -> Response:
        return respond.error_page(views, request, user, exc)

    async def refused(
        request: Request, user: User, api: ApiClient, exc: ApiError, apply: dict[str, Any]
    ) -> Response:
        """The Alerts page again, with the API's errors beside the form and the typed values."""
        return await respond.refused_form(
            views, request, user, exc, "alerts.html", lambda: alerts_context(api, "open"), apply
        )

    async def logged_in(request: Request) -> User | None:
        check_origin(request)
        return await current_user(request)

    @router.post("/alerts/rules")
    async def rule_create(request: Request) -> Response:
        user = await logged_in(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        fields = await form(request)
        async with ApiClient(request.app, user.token) as api:
            try:
                await api.post("/alert-rules", create_body(fields))
            except ApiError as exc:
                errors, general = field_errors(exc)
                values = {**create_defaults(), **fields}
                if "enabled" not in fields:
                    values.pop("enabled")
                apply = {"values": values, "errors": errors, "general_errors": general}
                return await refused(request, user, api, exc, apply)
        return RedirectResponse("/alerts#rules", status_code=303)

    @router.post("/alerts/rules/{rule_id}")
    async def rule_update(request: Request, rule_id: str) -> Response:
        user = await logged_in(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
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
        return RedirectResponse("/alerts#rules", status_code=303)

    @router.post("/alerts/rules/{rule_id}/delete")
    async def rule_delete(request: Request, rule_id: str) -> Response:
        user = await logged_in(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        async with ApiClient(request.app, user.token) as api:
            try:
                await api.request("DELETE", f"/alert-rules/{quote(rule_id, safe='')}")
            except ApiError as exc:
                return error_page(request, user, exc)
        return RedirectResponse("/alerts#rules", status_code=303)
