"""A line's Notes page (its maintenance notes, newest first, filtered by category and urgency) and its
stream of new notes. What it shows and how its stream finds new notes: :mod:`cloud.console.notes_view`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from cloud.console.deps import VIEWS, CurrentUser
from cloud.console.notes_view import NoteFilter, NotesFeed, notes_context
from cloud.console.respond import render_page
from cloud.console.stream import stream_response

router = APIRouter()


def chosen_filter(category: str = "", urgency: str = "") -> NoteFilter:
    """The page's filters from its query (the stream's URL carries the same)."""
    return NoteFilter.of(category, urgency)


Chosen = Annotated[NoteFilter, Depends(chosen_filter)]


@router.get("/lines/{line}/notes")
async def notes(request: Request, line: str, chosen: Chosen) -> Response:
    return await render_page(request, "notes.html", lambda api, _u: notes_context(api, line, chosen))


@router.get("/console/lines/{line}/notes/events")
async def notes_events(
    request: Request, user: CurrentUser, line: str, chosen: Chosen, limit: int | None = None
) -> Response:
    """Server-sent ``notes`` events: notes the page has not shown yet (with the page's filters) and
    the line's note counts when they change."""
    feed = NotesFeed(line, chosen, VIEWS.get_template("notes_parts.html"))
    return stream_response(request, user, feed, "notes", limit)
