"""What a line's Notes page shows (its maintenance notes, newest first, filtered), and its live feed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Template

from cloud.console.api import ApiClient
from cloud.console.line_tasks import NOTES, stats_path
from protocol.inference import HIGH_URGENCY, NOTE_CATEGORIES, NOTE_URGENCIES
from protocol.messages import utcnow

LABELLED = "labelled"  # the disposition that carries an operator's category (cloud.dispositions)

PAGE_SIZE = 50  # notes listed, and kept as new ones arrive
FIGURES_WINDOW = timedelta(days=1)  # the counts above the list
FIGURES_BUCKET_S = 3600


@dataclass(frozen=True)
class NoteFilter:
    """Which notes the page lists: one category and/or one urgency (None: any)."""

    category: str | None = None
    urgency: str | None = None

    @classmethod
    def of(cls, category: str | None, urgency: str | None) -> NoteFilter:
        """From the page's query: an empty choice ("any") filters nothing."""
        return cls(_chosen(category), _chosen(urgency))

    def params(self) -> dict[str, str]:
        """The set filters as query parameters (of the page, its stream and the API alike)."""
        chosen = {"category": self.category, "urgency": self.urgency}
        return {key: value for key, value in chosen.items() if value is not None}

    def describe(self) -> str:
        """The filter in words, for an empty list ('' when nothing is filtered)."""
        said = [f"{key} {value!r}" for key, value in self.params().items()]
        return " and ".join(said)


def _chosen(value: str | None) -> str | None:
    return (value or "").strip() or None


def notes_href(line: str, chosen: NoteFilter | None = None) -> str:
    """The Notes page of ``line``, with ``chosen`` filters."""
    query = urlencode(chosen.params()) if chosen else ""
    return f"/lines/{quote(line, safe='')}/notes" + (f"?{query}" if query else "")


def note_row(result: dict[str, Any], can_act: bool = False) -> dict[str, Any]:
    """One note as the page lists it: its words, category and urgency (from the stored result), the
    category an operator labelled it with, if any, and whether the viewer may label it."""
    output = result["output"]
    urgency = str(output.get("urgency", ""))
    disposition = result.get("disposition") or {}
    return {
        "line": result["line"],
        "labelled": disposition if disposition.get("disposition") == LABELLED else None,
        "can_act": can_act,
        "categories": NOTE_CATEGORIES,
        "id": result["id"],
        "captured_at": result["captured_at"],
        "gateway_id": result["gateway_id"],
        "frame": result["frame"],
        "text": output.get("text"),
        "category": output.get("category", result["label"]),
        "urgency": urgency,
        "urgency_score": output.get("urgency_score"),
        "urgent": urgency == HIGH_URGENCY,
    }


async def recent_notes(
    api: ApiClient, line: str, chosen: NoteFilter, can_act: bool = False
) -> list[dict[str, Any]]:
    """The line's newest notes that pass ``chosen``, newest first."""
    page = await api.get("/results", line=line, task=NOTES, limit=PAGE_SIZE, **chosen.params())
    return [note_row(r, can_act) for r in page["items"]]


async def note_figures(api: ApiClient, line: str) -> dict[str, Any]:
    """The line's notes over the last day: how many, and how many of high urgency (a 404 names an
    unknown line)."""
    now = utcnow()
    stats: dict[str, Any] = await api.get(
        stats_path(line),
        since=(now - FIGURES_WINDOW).isoformat(),
        until=now.isoformat(),
        interval_s=FIGURES_BUCKET_S,
        task=NOTES,
    )
    return {"notes": stats["notes"], "urgent": stats["urgent_notes"]}


def _choices(known: tuple[str, ...], chosen: str | None) -> list[str]:
    # A value typed into the address that the bundled model does not use is still offered as chosen.
    return [*known, chosen] if chosen and chosen not in known else list(known)


async def notes_context(
    api: ApiClient, line: str, chosen: NoteFilter, can_act: bool = False
) -> dict[str, Any]:
    """Everything the Notes page renders; ``can_act``: the user may label notes (operator, admin)."""
    notes = await recent_notes(api, line, chosen, can_act)  # before the counts, as the feed does
    live = f"/console/lines/{quote(line, safe='')}/notes/events"
    query = urlencode(chosen.params())
    return {
        "line": line,
        "notes": notes,
        "figures": await note_figures(api, line),
        "filters": chosen,
        "categories": _choices(NOTE_CATEGORIES, chosen.category),
        "urgencies": _choices(NOTE_URGENCIES, chosen.urgency),
        "high_urgency": HIGH_URGENCY,
        "live": f"{live}?{query}" if query else live,
    }


class NotesFeed:
    """Successive updates of one line's Notes page: notes it has not sent yet, and changed figures."""

    def __init__(self, line: str, chosen: NoteFilter, parts: Template, can_act: bool = False) -> None:
        self.line = line
        self.chosen = chosen
        self.can_act = can_act
        self._parts = parts.module  # the macros of notes_parts.html, shared with the page itself
        self._sent_ids: set[str] = set()
        self._figures: str | None = None

    async def tick(self, api: ApiClient) -> dict[str, Any] | None:
        """New notes (oldest first: the page prepends each in turn) and the figures if they changed."""
        # Notes first: a note committed between the two calls is then in the counts already,
        # never listed beside counts that leave it out.
        notes = await recent_notes(api, self.line, self.chosen, self.can_act)
        figures = self._render("figures", await note_figures(api, self.line))
        new = [
            {"id": n["id"], "html": self._render("note", n)}
            for n in reversed(notes)
            if n["id"] not in self._sent_ids
        ]
        # A note that left the newest page never comes back to it: remember only the page.
        self._sent_ids = {n["id"] for n in notes}
        parts = {"figures": figures} if figures != self._figures else {}
        self._figures = figures
        if not parts and not new:
            return None
        return {"at": utcnow().isoformat(), "parts": parts, "notes": new, "keep": PAGE_SIZE}

    def _render(self, macro: str, *args: Any) -> str:
        return str(getattr(self._parts, macro)(*args))
