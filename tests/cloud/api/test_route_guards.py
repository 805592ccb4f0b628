"""No route that changes anything ships unguarded: every non-GET route of the API needs a token
of some role (a gateway's own token counts), every console form the logged-in user, except the
logins named in ``cloud.api.guards.OPEN_WRITES``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI

from cloud.api import create_app
from cloud.api.auth import Operator, Viewer
from cloud.api.guards import OPEN_WRITES, endpoints, guards_of, unguarded_writes
from cloud.auth.service import Role
from cloud.config import CloudSettings
from cloud.console.deps import FormUser


def _app(tmp_path: Path) -> FastAPI:
    # Routes are registered when the app is built; nothing here connects to the database.
    return create_app(CloudSettings(db_url=f"sqlite:///{tmp_path / 'cloud.db'}", artifact_dir=str(tmp_path)))


def test_every_write_of_the_api_and_the_console_needs_a_caller(tmp_path: Path) -> None:
    app = _app(tmp_path)

    assert unguarded_writes(app) == []
    writes = {(method, e.path) for e in endpoints(app) for method in e.methods - {"GET", "HEAD", "OPTIONS"}}
    assert set(OPEN_WRITES) <= writes, "OPEN_WRITES names a route that no longer exists"
    assert len(writes) > 20  # the walk sees the API's and the console's routes, prefixes included
    assert ("PUT", "/api/v1/captures/files/{sha256}") in writes  # a gateway's upload: its own token
    assert ("POST", "/rollouts/{rollout_id}/{action}") in writes  # a console form


def test_a_new_open_route_is_reported_whatever_router_it_is_on(tmp_path: Path) -> None:
    app = _app(tmp_path)

    def open_door() -> None: ...

    def reads_only(_who: Viewer) -> None: ...  # in the demo profile Viewer lets anyone read

    app.add_api_route("/api/v1/doors", open_door, methods=["POST"])
    extra = APIRouter()
    extra.add_api_route("/windows/{window_id}", reads_only, methods=["DELETE"])
    app.include_router(extra, prefix="/api/v1")

    assert unguarded_writes(app) == ["POST /api/v1/doors", "DELETE /api/v1/windows/{window_id}"]


def test_guards_come_from_the_route_its_router_and_the_console(tmp_path: Path) -> None:
    app = _app(tmp_path)

    def write(_who: Operator) -> None: ...

    def bare() -> None: ...

    def console_form(_user: FormUser) -> None: ...

    app.add_api_route("/api/v1/guarded-here", write, methods=["POST"])
    by_router = APIRouter(dependencies=[Operator.__metadata__[0]])
    by_router.add_api_route("/guarded-by-router", bare, methods=["PUT"])
    app.include_router(by_router, prefix="/api/v1")
    app.add_api_route("/console-form", console_form, methods=["POST"])

    assert unguarded_writes(app) == []
    found = {e.path: guards_of(e) for e in endpoints(app)}
    assert [g.role for g in found["/api/v1/guarded-here"]] == [Role.operator]
    assert [g.role for g in found["/api/v1/guarded-by-router"]] == [Role.operator]
    assert [g.role for g in found["/console-form"]] == [None]  # the console's logged-in user
