"""The Line page's "Demo: change look" form (demo profile only; see :mod:`cloud.console.demo_look`)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from cloud.console.api import ApiError
from cloud.console.demo_look import DemoControlError, set_demo_look
from cloud.console.deps import FormUser
from cloud.console.respond import error_page, to_login
from cloud.console.session import form

router = APIRouter()


@router.post("/lines/{line}/demo-look")
async def change_look(request: Request, user: FormUser, line: str) -> Response:
    """Switch the line's simulated cameras to the form's ``look``, then back to the Line page."""
    if user is None:
        return to_login()
    look = (await form(request)).get("look", "")
    try:
        await set_demo_look(request, line, look, user)
    except DemoControlError as exc:
        # Shown as the console shows any refusal: the status and the reason in words.
        return error_page(request, user, ApiError("POST", f"demo control {line}", exc.status, exc.detail))
    return RedirectResponse(f"/lines/{quote(line, safe='')}#demo-look", status_code=303)
