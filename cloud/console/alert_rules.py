"""What the Alerts page shows, and what its rule forms send: admins create, edit and delete rules
per line through the API (routes: :mod:`cloud.console.pages.alerts`).

The forms send values as typed (text that spells a number as that number); the API alone
validates them, and its answers are shown next to the field they name with the typed values kept. Roles below admin are offered no form, and the
API refuses them (403) if they post one anyway.
"""

from __future__ import annotations

import math
from typing import Any

from cloud.alerts.rules import DEFAULT_DRIFT_LEVEL, DRIFT_LEVELS, RuleKind
from cloud.alerts.schemas import AlertRuleCreate
from cloud.console.api import ApiClient, ApiError

# The rule kinds in words, and what a threshold means per kind (the API's units, shown beside
# the form): a defect rate is a percent here although rollout gates take fractions.
KIND_NAMES = {
    RuleKind.DEFECT_RATE.value: "Defect rate",
    RuleKind.GATEWAY_OFFLINE.value: "Gateway offline",
    RuleKind.OUTBOX_BACKLOG.value: "Outbox backlog",
    RuleKind.MODEL_DRIFT.value: "Model drift",
}
KIND_UNITS = {RuleKind.DEFECT_RATE.value: "%", RuleKind.GATEWAY_OFFLINE.value: "seconds",
              RuleKind.OUTBOX_BACKLOG.value: "items", RuleKind.MODEL_DRIFT.value: "drift level"}  # fmt: skip
KIND_HELP = {
    RuleKind.DEFECT_RATE.value: "threshold in percent (0-100) of results defective over the window: "
    "10 means 10%, not 0.1",
    RuleKind.GATEWAY_OFFLINE.value: "threshold in seconds a gateway of the line has not been heard",
    RuleKind.OUTBOX_BACKLOG.value: "threshold in items (results and events) waiting in a gateway's outbox",
    RuleKind.MODEL_DRIFT.value: "threshold is the drift level of a gateway's slot that alerts: 2 when "
    "its drift is confirmed (the default, left empty), 1 already when suspected",
}
# One short line per kind beside the threshold field; the page's script shows the chosen kind's
# only, and without the script all of them stay visible.
THRESHOLD_HINTS = {
    RuleKind.DEFECT_RATE.value: "Defect rate in percent: 10 means 10%, not 0.1.",
    RuleKind.GATEWAY_OFFLINE.value: "Gateway offline in seconds: 300 means 5 minutes of silence.",
    RuleKind.OUTBOX_BACKLOG.value: "Outbox backlog in items (results and events) waiting to be sent.",
    RuleKind.MODEL_DRIFT.value: "Model drift level: 2 alerts on confirmed drift (empty means 2), 1 on suspected.",
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


def threshold_text(threshold: float, kind: str) -> str:
    """A rule's threshold with its unit ('10%', '60 seconds', '500 items', 'confirmed (level 2)')."""
    if kind == RuleKind.MODEL_DRIFT.value:
        return f"{DRIFT_LEVELS.get(int(threshold), '?')} (level {threshold:g})"
    unit = KIND_UNITS.get(kind, "")
    return f"{threshold:g}{unit}" if unit == "%" else f"{threshold:g} {unit}".rstrip()


def window_text(window_s: float | None) -> str:
    """A defect-rate window in seconds, with minutes when whole ('600 s (10 min)')."""
    if not window_s:
        return "-"
    minutes = window_s / 60
    return (
        f"{window_s:g} s ({minutes:g} min)" if minutes >= 1 and minutes == int(minutes) else f"{window_s:g} s"
    )


def small_percent(rule: dict[str, Any]) -> bool:
    """A defect-rate rule below 1%: most likely a fraction typed where a percent was asked."""
    return rule.get("kind") == RuleKind.DEFECT_RATE.value and float(rule.get("threshold") or 0) < 1


def saved_notice(rules: list[dict[str, Any]], saved: str | None) -> str | None:
    """After a save, the warning about a defect-rate threshold below 1%, if the saved rule has one."""
    rule = next((r for r in rules if str(r["id"]) == saved), None)
    if rule is None or not small_percent(rule):
        return None
    t = f"{rule['threshold']:g}"
    return (
        f"Saved the defect-rate rule on {rule['line']} with threshold {t}%. The threshold is a percent: "
        f"{t} means {t}% of results, not {100 * rule['threshold']:g}%. Change it below if you meant "
        f"{100 * rule['threshold']:g}%."
    )


async def alerts_context(api: ApiClient, show: str, saved: str | None = None) -> dict[str, Any]:
    """Alerts (open or all), rules, and what the rule forms offer.

    ``saved``: the id of the rule just saved, so the page can question a suspect threshold.
    """
    alerts = await api.get("/alerts", state=show)
    rules = await api.get("/alert-rules")
    known = await api.get("/lines")
    # A rule may be set up before its line's gateways arrive: allowed, but flagged in the list.
    staffed = {entry["line"] for entry in known if entry.get("gateways")}
    for rule in rules:
        rule["no_gateway"] = rule["line"] not in staffed
        rule["kind_name"] = KIND_NAMES.get(rule["kind"], rule["kind"])
        rule["threshold_text"] = threshold_text(rule["threshold"], rule["kind"])
        rule["window_text"] = window_text(rule.get("window_s"))
        rule["small_percent"] = small_percent(rule)
    return {
        "alerts": alerts,
        "rules": rules,
        "show": show,
        "notice": saved_notice(rules, saved),
        "lines": sorted(entry["line"] for entry in known),
        "kinds": [k.value for k in RuleKind],
        "kind_names": KIND_NAMES,
        "kind_units": KIND_UNITS,
        "kind_help": KIND_HELP,
        "threshold_hints": THRESHOLD_HINTS,
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
        "threshold": form_number(f.get("threshold", "")),
        "enabled": "enabled" in f,
    }
    if kind == RuleKind.MODEL_DRIFT.value and not f.get("threshold", "").strip():
        body["threshold"] = DEFAULT_DRIFT_LEVEL  # the usual choice: alert once drift is confirmed
    if kind == RuleKind.DEFECT_RATE.value:
        for name in ("window_s", "min_results"):
            if f.get(name, "").strip():
                body[name] = form_number(f[name])
    return body


def update_body(f: dict[str, str], kind: str) -> dict[str, Any]:
    """The API request of a rule's edit form (a window only for the kinds that have one)."""
    body: dict[str, Any] = {"threshold": form_number(f.get("threshold", "")), "enabled": "enabled" in f}
    if kind == RuleKind.DEFECT_RATE.value:
        body["window_s"] = form_number(f.get("window_s", "")) if f.get("window_s", "").strip() else None
    return body


def form_number(text: str) -> int | float | str:
    """The number a form field's text spells, or the text itself: the API takes JSON numbers only,
    and refuses the text naming the field, which the form then shows beside it."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


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
