"""What the console's page modules share: the templates, the live streams' pace, and who is asking.

``CurrentUser`` is the logged-in user of a stream or an ``<img>`` (401 without one: a page's
script then goes to the login form). ``FormUser`` is the user of a state-changing form once its
Origin has been checked (None without a login: the form's route sends the browser to log in).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from cloud.console.render import templates
from cloud.console.session import User, check_origin, current_user

VIEWS = templates()  # the Jinja2 templates and filters every page renders with
REFRESH_S = 3.0  # how often each live stream ticks


async def logged_in(request: Request) -> User:
    """The user whose token is in the cookie; 401 without one."""
    user = await current_user(request)
    if user is None:
        raise HTTPException(401, "log in to the console first")
    return user


async def form_user(request: Request) -> User | None:
    """The user behind a state-changing form, after the CSRF origin check (403 from another site)."""
    check_origin(request)
    return await current_user(request)


CurrentUser = Annotated[User, Depends(logged_in)]
FormUser = Annotated[User | None, Depends(form_user)]
