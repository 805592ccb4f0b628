"""Template environment, safe Markdown and small inline-SVG charts (no JavaScript library needed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from cloud.console.score_meaning import score_meaning_html
from cloud.drift import event_words
from protocol.drift import DRIFT_EVENT_KIND

HERE = Path(__file__).parent
# 'html': False makes raw HTML in a model card show as text, so a card cannot inject script.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def markdown(text: str | None) -> Markup:
    """Render a model card; any HTML inside it is escaped, never passed through."""
    if not text:
        return Markup("")
    return Markup(_MARKDOWN.render(text))  # noqa: S704 - html disabled above, so the output is safe


def when(value: str | None) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM:SS' UTC for tables."""
    if not value:
        return "-"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")


def actor(value: str | None) -> str:
    """Who did something: a user by name ('user:otto' -> 'otto'); a token of no user by its name
    ('token:ci' -> 'token ci'), which its maker chose, so it never passes for a user."""
    shown = value or "-"
    if shown.startswith("user:"):
        return shown.removeprefix("user:")
    return shown.replace("token:", "token ", 1) if shown.startswith("token:") else shown


def percent(value: float | None) -> str:
    """A ratio as a percentage, '-' when there is nothing to divide."""
    return "-" if value is None else f"{100 * value:.1f}%"


def bar_chart(
    values: Sequence[float | None], labels: Sequence[str], height: int = 120, as_percent: bool = False
) -> Markup:
    """Bars for ``values`` (None = no data) as an inline SVG scaled to its container's width.

    The y-axis top value is printed beside the chart in HTML: text inside the SVG would be
    stretched by ``preserveAspectRatio="none"``.
    """
    width = max(len(values), 1) * 10
    top = max((v for v in values if v is not None), default=0.0) or 1.0
    shown = max((v for v in values if v is not None), default=None)
    scale = "-" if shown is None else (percent(shown) if as_percent else f"{shown:g}")
    parts = [
        f'<div class="chart-box"><span class="ymax" title="highest bar">{scale}</span>'
        f'<span class="ymin">{"0%" if as_percent else "0"}</span>',
        f'<svg class="chart" viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img">',
    ]
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        if value is None:
            continue
        h = max(value / top * (height - 4), 1 if value else 0)
        shown_value = percent(value) if as_percent else f"{value:g}"
        parts.append(
            f'<rect x="{i * 10 + 1}" y="{height - h:.1f}" width="8" height="{h:.1f}">'
            f"<title>{escape(label)}: {shown_value}</title></rect>"
        )
    parts.append("</svg></div>")
    return Markup("".join(parts))  # noqa: S704 - numbers and escaped labels only


def significant(value: float, digits: int = 3) -> str:
    """A number with enough digits to tell a small limit from zero: 0.01 -> '0.01', 2.14159 -> '2.14'.

    A fixed '.0f' shows a 0.01 ms limit as '0 ms', as if there were no room at all.
    """
    if value == 0 or abs(value) >= 10**digits:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def milliseconds(value: float | None) -> str:
    """A duration in ms with its unit and enough digits ('0.01 ms', '2.1 ms', '-' for none)."""
    return "-" if value is None else f"{significant(value)} ms"


# The unit of an alert's value per rule kind (see cloud.alerts.rules: a defect rate is in percent).
_ALERT_UNITS = {"defect_rate": "%", "gateway_offline": " s", "outbox_backlog": " items"}
_DRIFT_LEVELS = {1: "suspected", 2: "confirmed"}  # a model_drift alert's value is a drift level


def alert_value(value: float | None, kind: str | None) -> str:
    """An alert's measured value with its unit ('15.8%', '412 s', '38 items': results and events)."""
    if value is None:
        return "-"
    if kind == "model_drift":
        return _DRIFT_LEVELS.get(round(value), f"level {value:g}")
    number = f"{value:.1f}" if kind == "defect_rate" else f"{value:.0f}"
    return number + _ALERT_UNITS.get(kind or "", "")


def target_summary(target: dict[str, Any] | None) -> str:
    """A rollout's target in words: 'gateways gw-2 · line line-1 · site x · tags a, b · CPU class c'."""
    target = target or {}
    parts = []
    if target.get("gateways"):
        parts.append("gateways " + ", ".join(str(g) for g in target["gateways"]))
    for key in ("line", "site"):
        if target.get(key):
            parts.append(f"{key} {target[key]}")
    if target.get("tags"):
        parts.append("tags " + ", ".join(str(t) for t in target["tags"]))
    if target.get("cpu_class"):
        parts.append("CPU class " + ", ".join(str(c) for c in target["cpu_class"]))
    return " · ".join(parts) or "-"


def slot_state(slot: dict[str, Any] | None) -> str:
    """A reported slot in words: what it runs, then how its latest update went.

    A failed or rolled-back update leaves the active version serving: saying 'failed' next to
    it alone would read as if the gateway itself were broken.
    """
    if not slot:
        return "-"
    active = (slot.get("active") or {}).get("version")
    target = (slot.get("target") or {}).get("version")
    phase, error = slot.get("phase") or "idle", slot.get("error")
    running = f"running {active}" if active else "running nothing"
    update = f"update {target}" if target else "last update"
    if phase == "failed":
        return f"{running} · last {update.removeprefix('last ')} refused: {error or 'no reason given'}"
    if phase == "rolled_back":
        return f"{running} · {update} rolled back: {error or 'no reason given'}"
    if phase in ("idle", "committed"):
        return running
    return f"{running} · installing {target or 'an update'} ({phase.replace('_', ' ')})"


def _scalar(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_scalar(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_scalar(v)}" for k, v in value.items())
    return "-" if value is None else str(value)


# How an OTA event's details read: (key, words before the value), in this order.
_OTA_DETAILS = (("slot", "slot"), ("phase", "phase"), ("revision", "revision"),
                ("target_version", "target"), ("active_version", "active"))  # fmt: skip


def event_details(kind: str | None, details: dict[str, Any] | None) -> str:
    """An event's details as one readable line ('slot main · phase failed · target 1.2.0')."""
    details = dict(details or {})
    if kind == DRIFT_EVENT_KIND:
        return event_words(details)
    parts = []
    if kind == "ota":
        for key, words in _OTA_DETAILS:
            value = details.pop(key, None)
            if value is not None:
                parts.append(f"{words} {str(value).replace('_', ' ') if key == 'phase' else value}")
    parts += [f"{key.replace('_', ' ')} {_scalar(v)}" for key, v in details.items() if v is not None]
    return " · ".join(parts) or "-"


def templates() -> Jinja2Templates:
    """The console's Jinja2 templates with its filters (autoescaping on)."""
    made = Jinja2Templates(directory=str(HERE / "templates"))
    filters: dict[str, Any] = {
        "markdown": markdown,
        "when": when,
        "percent": percent,
        "actor": actor,
        "target_summary": target_summary,
        "slot_state": slot_state,
        "ms": milliseconds,
        "score_meaning": score_meaning_html,
    }
    made.env.globals["alert_value"] = alert_value
    made.env.filters.update(filters)
    made.env.globals["bar_chart"] = bar_chart
    made.env.globals["event_details"] = event_details
    return made
