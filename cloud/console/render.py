"""Template environment, safe Markdown and small inline-SVG charts (no JavaScript library needed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

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
    """Who did something, without the API's token prefix ('token:login:otto' -> 'otto')."""
    return (value or "-").removeprefix("token:").removeprefix("login:")


def percent(value: float | None) -> str:
    """A ratio as a percentage, '-' when there is nothing to divide."""
    return "-" if value is None else f"{100 * value:.1f}%"


def bar_chart(values: Sequence[float | None], labels: Sequence[str], height: int = 120) -> Markup:
    """Bars for ``values`` (None = no data) as an inline SVG scaled to its container's width."""
    width = max(len(values), 1) * 10
    top = max((v for v in values if v is not None), default=0.0) or 1.0
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img">',
    ]
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        if value is None:
            continue
        h = max(value / top * (height - 4), 1 if value else 0)
        parts.append(
            f'<rect x="{i * 10 + 1}" y="{height - h:.1f}" width="8" height="{h:.1f}">'
            f"<title>{escape(label)}: {value:g}</title></rect>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and escaped labels only


def templates() -> Jinja2Templates:
    """The console's Jinja2 templates with its filters (autoescaping on)."""
    made = Jinja2Templates(directory=str(HERE / "templates"))
    filters: dict[str, Any] = {"markdown": markdown, "when": when, "percent": percent, "actor": actor}
    made.env.filters.update(filters)
    made.env.globals["bar_chart"] = bar_chart
    return made
