"""Which routes need who: found by walking each route's dependency tree.

An API route is guarded by a dependency of ``cloud.api.auth`` (``Viewer``, ``Operator``,
``Admin``, ``require(...)``, ``CaptureUploader``), a console route by the logged-in user
(``CurrentUser``, ``FormUser`` of ``cloud.console.deps``). The OpenAPI document's 401 and 403
come from here, and a test asserts that no route that changes anything is open except those
in :data:`OPEN_WRITES`, so a new route cannot ship unguarded.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import get_args

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from cloud.api import auth
from cloud.auth.service import Role
from cloud.console import deps as console_deps

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Writes anyone may send, and why. Every other non-GET route needs a token or a console login.
OPEN_WRITES: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/auth/login"): "a password is exchanged for a token here",
    ("POST", "/login"): "the console's login form (it checks the Origin, and the password)",
}
# The dependency behind ``CaptureUploader``: a gateway's own token, or an admin's.
_CAPTURE_UPLOADER = get_args(auth.CaptureUploader)[1].dependency


@dataclass(frozen=True)
class Guard:
    """What a route's caller must show: a token of at least ``role`` (``anonymous_read``: none
    in the demo profile), a gateway's own token or an admin's (``role`` gateway,
    ``gateway_or_admin``), or a console login (``role`` None)."""

    role: Role | None
    anonymous_read: bool = False
    gateway_or_admin: bool = False

    @property
    def needs_a_caller(self) -> bool:
        """Whether every profile refuses a request that shows nobody."""
        return not self.anonymous_read


@dataclass(frozen=True)
class Endpoint:
    """One route as the app serves it: its full path, methods and dependency tree (with the
    dependencies its routers were included with)."""

    path: str
    methods: frozenset[str]
    dependant: Dependant


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every FastAPI route of ``app`` (API and console), as served."""
    return [
        Endpoint(str(context.path), frozenset(context.methods or ()), context.dependant)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    ]


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _guard_of(call: object) -> Guard | None:
    if call is _CAPTURE_UPLOADER:
        return Guard(Role.gateway, gateway_or_admin=True)
    if call in (console_deps.logged_in, console_deps.form_user):
        return Guard(None)
    if getattr(call, "__module__", None) != auth.__name__ or not inspect.isfunction(call):
        return None
    captured = inspect.getclosurevars(call).nonlocals
    role = captured.get("role")
    if not isinstance(role, Role):
        return None
    return Guard(role, anonymous_read=bool(captured.get("anonymous_read", False)))


def guards_of(endpoint: Endpoint) -> list[Guard]:
    """The guards among ``endpoint``'s dependencies."""
    return [guard for sub in _dependencies(endpoint.dependant) if (guard := _guard_of(sub.call)) is not None]


def unguarded_writes(app: FastAPI) -> list[str]:
    """'METHOD path' of each route that may change something, that anyone may call and that
    :data:`OPEN_WRITES` does not name; empty when every write needs a token or a console login."""
    return [
        f"{method} {endpoint.path}"
        for endpoint in endpoints(app)
        for method in sorted(endpoint.methods - READ_METHODS)
        if (method, endpoint.path) not in OPEN_WRITES
        and not any(guard.needs_a_caller for guard in guards_of(endpoint))
    ]
