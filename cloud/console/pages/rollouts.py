"""The Rollouts list with the admins' "new rollout" form, and the list's stream.

What the form offers and sends: :mod:`cloud.console.rollout_form`; the list's feed:
:mod:`cloud.console.rollout_view`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from cloud.console import rollout_form, rollout_view
from cloud.console.api import ApiClient, ApiError
from cloud.console.deps import VIEWS, CurrentUser, FormUser
from cloud.console.respond import Fields, FormPage, render_page, submit_form
from cloud.console.session import User
from cloud.console.stream import stream_response

router = APIRouter()


async def rollouts_context(api: ApiClient, values: dict[str, str] | None = None) -> dict[str, Any]:
    """The list and the form, with ``values`` typed over the API's defaults."""
    context = {
        "rollouts": await api.get("/rollouts"),
        "values": {**rollout_form.defaults(), **(values or {})},
        "errors": {},
        "general_errors": [],
    }
    return context | await rollout_form.form_context(api)


@router.get("/rollouts")
async def rollouts(request: Request) -> Response:
    async def build(api: ApiClient, user: User) -> dict[str, Any]:
        if not user.is_admin:  # the form (and the registry reads behind it) is for admins only
            return {"rollouts": await api.get("/rollouts")}
        return await rollouts_context(api)

    return await render_page(request, "rollouts.html", build)


@router.get("/console/rollouts/events")
async def rollouts_events(request: Request, user: CurrentUser, limit: int | None = None) -> Response:
    """Server-sent ``rollouts`` events: the list's table (state and progress) whenever it changed."""
    feed = rollout_view.RolloutsFeed(VIEWS.get_template("rollouts_parts.html"))
    return stream_response(request, user, feed, "rollouts", limit)


def _create_refusal(exc: ApiError, _typed: Fields) -> dict[str, Any]:
    errors, general = rollout_form.field_errors(exc)
    return {"errors": errors, "general_errors": general}


CREATE_PAGE = FormPage("rollouts.html", rollouts_context, _create_refusal)


@router.post("/rollouts")
async def rollout_create(request: Request, user: FormUser) -> Response:
    return await submit_form(
        request,
        user,
        CREATE_PAGE,
        lambda api, fields: api.post("/rollouts", rollout_form.request_body(fields)),
        lambda created: f"/rollouts/{quote(created['id'], safe='')}",
    )
