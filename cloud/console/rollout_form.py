"""The admins' "new rollout" form: what it offers, the API request it makes, and the API's errors per field.

The form sends what ``factoryctl rollouts create`` sends; the API alone validates it, and its
answers are shown next to the field they name, with the typed values kept.
"""

from __future__ import annotations

from typing import Any, get_args

from cloud.console.api import ApiClient, ApiError
from cloud.ota.schemas import RolloutCreate, Thresholds

LIST_FIELDS = ("gateways", "tags", "cpu_class")
TARGET_FIELDS = ("gateways", "tags", "line", "site", "cpu_class")
# Thresholds that may be switched off: an empty field sends null (no limit), not the default.
NULLABLE = tuple(name for name, f in Thresholds.model_fields.items() if type(None) in get_args(f.annotation))
THRESHOLD_HELP = {name: f.description or "" for name, f in Thresholds.model_fields.items()}


def defaults() -> dict[str, str]:
    """The form's initial values: the API's own defaults, so the form and factoryctl agree."""
    fields = RolloutCreate.model_fields
    values = {
        # No default slot: a slot the target gateways lack would be offered for nothing.
        "slot": "",
        "waves": str(fields["waves"].default),
        "bake_s": f"{fields['bake_s'].default:g}",
    }
    for name, value in Thresholds().model_dump().items():
        values[name] = "" if value is None else f"{value:g}"
    return values


async def form_context(api: ApiClient) -> dict[str, Any]:
    """Models with their versions, and the lines, sites, tags, CPU classes and gateways a target may name."""
    # Newest version first, so the form proposes the latest of each model.
    models = [
        {"name": m["name"], "versions": m["versions"][::-1], "untrusted": m.get("untrusted", [])}
        for m in await api.get("/models")
    ]
    gateways = await api.get("/gateways")
    return {
        "models": models,
        "known": {
            "lines": sorted({g["line"] for g in gateways if g.get("line")}),
            "sites": sorted({g["site"] for g in gateways if g.get("site")}),
            "tags": sorted({t for g in gateways for t in g.get("tags") or []}),
            "cpu_classes": sorted({c for g in gateways if (c := (g.get("machine") or {}).get("cpu_class"))}),
            "gateways": sorted(g["id"] for g in gateways),
            "slots": sorted({m["slot"] for g in gateways for m in g.get("models") or [] if m.get("slot")}),
        },
        "thresholds": list(Thresholds.model_fields),
        "threshold_help": THRESHOLD_HELP,
        "nullable": NULLABLE,
    }


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def request_body(f: dict[str, str]) -> dict[str, Any]:
    """The API request of the submitted form; values go as typed (the API says what is wrong)."""
    target: dict[str, Any] = {name: _split(f.get(name, "")) for name in LIST_FIELDS}
    for name in ("line", "site"):
        target[name] = f.get(name, "").strip() or None
    body: dict[str, Any] = {
        "model_name": f.get("model_name", ""),
        "version": f.get("version", ""),
        # Empty: the API chooses the slot that runs this model (or its task) on the target.
        "slot": f.get("slot", "").strip() or None,
        "target": target,
    }
    for name in ("waves", "bake_s"):
        if f.get(name, "").strip():
            body[name] = f[name].strip()
    thresholds: dict[str, Any] = {}
    for name in Thresholds.model_fields:
        value = f.get(name, "").strip()
        if value:
            thresholds[name] = value
        elif name in NULLABLE and name in f:
            thresholds[name] = None
    body["thresholds"] = thresholds
    return body


def field_errors(exc: ApiError) -> tuple[dict[str, str], list[str]]:
    """The API's refusal as (messages per form field, messages about the whole form)."""
    fields: dict[str, str] = {}
    general: list[str] = []
    if not isinstance(exc.errors, list):
        message = exc.detail
        if "target" in message:
            fields["target"] = message
        elif message.startswith("slot ") or " model; slot " in message:
            fields["slot"] = message
        elif "version" in message and "registry" in message:
            fields["version"] = message
        else:
            general.append(message)
        return fields, general
    for err in exc.errors:
        loc = [str(part) for part in err.get("loc", []) if part != "body"]
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        name = next((part for part in reversed(loc) if not part.isdigit()), "")
        if name in ("target",) or (loc and loc[0] == "target" and name not in TARGET_FIELDS):
            name = "target"
        if name and (
            name in RolloutCreate.model_fields or name in Thresholds.model_fields or name in TARGET_FIELDS
        ):
            fields[name] = f"{fields[name]}; {msg}" if name in fields else msg
        else:
            general.append(f"{'.'.join(loc) or 'request'}: {msg}")
    return fields, general
