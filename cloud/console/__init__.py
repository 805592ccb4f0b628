"""The operators' web console: server-rendered pages over the cloud's own API, served at ``/``."""

from __future__ import annotations

from cloud.console.routes import make_router

router = make_router()

__all__ = ["make_router", "router"]
