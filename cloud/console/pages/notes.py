"""A line's Notes page (its maintenance notes, newest first, filtered by category and urgency) and its
stream of new notes. What it shows and how its stream finds new notes: :mod:`cloud.console.notes_view`.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from cloud.console.api import ApiClient, ApiError
from cloud.console.deps import VIEWS, CurrentUser, FormUser
from cloud.console.notes_view import LABELLED, NoteFilter, NotesFeed, notes_context, notes_href
from cloud.console.respond import error_page, render_page, to_login
from cloud.console.session import form
from cloud.console.stream import stream_response

router = APIRouter()


def chosen_filter(category: str = "", urgency: str = "") -> NoteFilter:
    """The page's filters from its query (the stream's URL carries the same)."""
    return NoteFilter.of(category, urgency)


Chosen = Annotated[NoteFilter, Depends(chosen_filter)]


@router.get("/lines/{line}/notes")
async def notes(request: Request, line: str, chosen: Chosen) -> Response:
    return await render_page(
        request, "notes.html", lambda api, user: notes_context(api, line, chosen, user.is_operator)
    )


@router.get("/console/lines/{line}/notes/events")
async def notes_events(
    request: Request, user: CurrentUser, line: str, chosen: Chosen, limit: int | None = None
) -> Response:
    """Server-sent ``notes`` events: notes the page has not shown yet (with the page's filters) and
    the line's note counts when they change."""
    feed = NotesFeed(line, chosen, VIEWS.get_template("notes_parts.html"), user.is_operator)
    return stream_response(request, user, feed, "notes", limit)


@router.post("/lines/{line}/notes/{result_id}/category")
async def label_note(request: Request, user: FormUser, line: str, result_id: str) -> Response:
    """A note's category form: a ``labelled`` disposition sent to the API as the user (so the audit
    log names them), then the Notes page again, its filters kept."""
    if user is None:
        return to_login()
    fields = await form(request)
    body = {"disposition": LABELLED, "true_label": fields.get("category", "")}
    async with ApiClient(request.app, user.token) as api:
        try:
            await api.request("PUT", f"/results/{quote(result_id, safe='')}/disposition", json=body)
        except ApiError as exc:
            return error_page(request, user, exc)
    return RedirectResponse(_back(request, line), status_code=303)


def _back(request: Request, line: str) -> str:
    """The Notes page the form was on (its filters kept), from the Referer; else the line's notes."""
    page = notes_href(line)
    sent = urlsplit(request.headers.get("referer", ""))
    return f"{sent.path}?{sent.query}" if sent.path == page and sent.query else page
