"""Renders a MODEL_CARD.md (or a part of one) from its template in ``domain_models/templates/``.

The card writers compute the figures and table rows; the templates hold the words and layout, so a
card states what the figures passed in say and its prose can be read (and reviewed) as Markdown.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import cast

from jinja2 import Environment, PackageLoader, StrictUndefined

from domain_models.common import markdown_table

_ENV = Environment(
    loader=PackageLoader("domain_models", "templates"),
    # A misspelt or missing figure must fail the build, not print an empty string into a card.
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    # Markdown, not HTML (the console renders cards with raw HTML off): escaping the figures would
    # turn the draft card's `<!-- int8 -->` markers and a row's `p >= 0.9` into entities.
    autoescape=False,  # noqa: S701
)
_ENV.globals["markdown_table"] = markdown_table
# Python's own format spec ("{:.4f}" is `x|fmt(".4f")`), which Jinja's printf-style `format` lacks
# (thousands separators, percentages).
_ENV.filters["fmt"] = format


def render(template: str, **figures: object) -> str:
    """The text of ``template`` with ``figures`` filled in."""
    return _ENV.get_template(template).render(**figures)


def macro(template: str, name: str) -> Callable[..., str]:
    """Macro ``name`` of ``template``, a file of macros only (its body renders without figures)."""
    return cast(Callable[..., str], getattr(_ENV.get_template(template).module, name))


def cpu_count() -> int:
    """Logical CPUs of the machine writing the card, which is the one that measured its latency."""
    return os.cpu_count() or 1
