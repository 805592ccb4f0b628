"""The FastAPI application factory. Nothing is connected at import time."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.concurrency import run_in_threadpool

from cloud.api.routers import dead_letters, gateways, health, lines, results
from cloud.config import CloudSettings
from cloud.db.engine import make_engine, make_sessionmaker
from cloud.db.migrate import migrate

log = logging.getLogger(__name__)


def create_app(settings: CloudSettings) -> FastAPI:
    """Build the API for ``settings``; the engine is created (and the DB migrated) at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.db_url)
        if settings.migrate_on_start:
            await run_in_threadpool(migrate, settings.db_url, "head", settings.db_wait_s, engine)
        app.state.engine = engine
        app.state.sessions = make_sessionmaker(engine)
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="factory-edge cloud API",
        version="1",
        lifespan=lifespan,
        description="Gateways, inference results, line statistics and dead letters.",
    )
    app.state.settings = settings
    app.state.registry = registry = CollectorRegistry()
    _instrument(app, registry)
    if settings.profile == "demo":
        log.warning("API runs in the demo profile: no authentication, not for a plant network")
    for module in (gateways, results, lines, dead_letters):
        app.include_router(module.router, prefix="/api/v1")
    app.include_router(health.router)
    return app


def _instrument(app: FastAPI, registry: CollectorRegistry) -> None:
    requests = Counter(
        "http_requests_total",
        "HTTP requests by route and status",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram("http_request_seconds", "HTTP request duration", ["route"], registry=registry)

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        # The route template, not the raw path, keeps label cardinality bounded.
        route = getattr(request.scope.get("route"), "path", "<unmatched>")
        requests.labels(request.method, route, str(response.status_code)).inc()
        latency.labels(route).observe(time.perf_counter() - started)
        return response
