"""The FastAPI application factory. Nothing is connected at import time."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from cloud.api.auth import require
from cloud.api.errors import install_error_model
from cloud.api.routers import (
    access,
    alerts,
    blobs,
    captures,
    datasets,
    dead_letters,
    defects,
    dispositions,
    drift,
    events,
    export,
    gateways,
    health,
    lines,
    models,
    results,
    rollouts,
    shadow,
    training,
)
from cloud.auth.demo_accounts import refuse_demo_accounts
from cloud.auth.service import Role
from cloud.auth.throttle import LoginThrottle
from cloud.config import CloudSettings
from cloud.console import router as console_router
from cloud.datasets.files import make_capture_store
from cloud.datasets.orders import MqttOrdersPublisher, OrdersPublisher
from cloud.db.engine import make_engine, make_sessionmaker
from cloud.db.migrate import migrate
from cloud.ota.desired import DesiredPublisher, MqttDesiredPublisher
from cloud.registry.store import make_store
from cloud.teach_queue import CeleryTeachQueue
from cloud.training.files import make_training_store
from cloud.training.queue import TeachQueue

log = logging.getLogger(__name__)


def create_app(
    settings: CloudSettings,
    publisher: DesiredPublisher | None = None,
    orders_publisher: OrdersPublisher | None = None,
    teach_queue: TeachQueue | None = None,
) -> FastAPI:
    """Build the API for ``settings``; the engine is created (and the DB migrated) at start-up.

    ``publisher`` puts desired states on the broker, ``orders_publisher`` capture orders (default:
    an MQTT client each, made on first use), ``teach_queue`` training runs to the Celery worker
    (default: the settings' Celery broker, on first use).
    """
    made: list[MqttDesiredPublisher] = []
    made_orders: list[MqttOrdersPublisher] = []
    made_queue: list[CeleryTeachQueue] = []

    def get_publisher() -> DesiredPublisher:
        if publisher is not None:
            return publisher
        if not made:
            made.append(MqttDesiredPublisher(settings))
        return made[0]

    def get_orders_publisher() -> OrdersPublisher:
        if orders_publisher is not None:
            return orders_publisher
        if not made_orders:
            made_orders.append(MqttOrdersPublisher(settings))
        return made_orders[0]

    def get_teach_queue() -> TeachQueue:
        if teach_queue is not None:
            return teach_queue
        if not made_queue:
            made_queue.append(CeleryTeachQueue(settings))
        return made_queue[0]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.db_url)
        if settings.migrate_on_start:
            await run_in_threadpool(migrate, settings.db_url, "head", settings.db_wait_s, engine)
        app.state.engine = engine
        app.state.sessions = sessions = make_sessionmaker(engine)
        try:
            if settings.profile == "production":
                await run_in_threadpool(_refuse_demo_accounts, sessions)
            yield
        finally:
            for pub in (*made, *made_orders):
                pub.close()
            for queue in made_queue:
                queue.close()
            engine.dispose()

    app = FastAPI(
        title="factory-edge cloud API",
        version="1",
        lifespan=lifespan,
        description="Gateways, inference results, line statistics and dead letters.",
        # The docs follow a setting: off by default in production, where they map the attack surface.
        docs_url="/docs" if settings.serves_docs else None,
        redoc_url="/redoc" if settings.serves_docs else None,
        openapi_url="/openapi.json" if settings.serves_docs else None,
    )
    app.state.settings = settings
    app.state.store = make_store(settings)
    app.state.publisher = get_publisher
    app.state.capture_store = make_capture_store(settings)
    app.state.orders_publisher = get_orders_publisher
    app.state.teach_queue = get_teach_queue
    app.state.training_store = make_training_store(settings)
    app.state.registry = registry = CollectorRegistry()
    app.state.login_throttle = LoginThrottle()  # in-process: see cloud/auth/throttle.py
    _instrument(app, registry)
    if settings.profile == "demo":
        log.warning("API runs in the demo profile: reads need no token; not for a plant network")
    # Reads need a viewer token in production; writes declare their own, higher role.
    readers = [require(Role.viewer, anonymous_read=True)]
    for module in (gateways, events, results, lines, drift, dead_letters, models, rollouts, blobs):
        deps = [] if module is blobs else readers  # blobs: public by hash, see its docstring
        app.include_router(module.router, prefix="/api/v1", dependencies=deps)
    app.include_router(access.router, prefix="/api/v1")
    # Alerts and defects declare their role per route (viewer reads, operator acks, admin rules).
    app.include_router(alerts.router, prefix="/api/v1")
    app.include_router(defects.router, prefix="/api/v1")
    # Dispositions (viewer reads, operator sets) and CSV export (viewer) likewise.
    app.include_router(dispositions.router, prefix="/api/v1")
    app.include_router(export.router, prefix="/api/v1")
    # Captures (operator starts, a gateway's own token uploads) and datasets (viewer reads,
    # operator labels) declare their roles per route too.
    app.include_router(captures.router, prefix="/api/v1")
    app.include_router(datasets.router, prefix="/api/v1")
    # Training runs: operators teach a dataset, viewers watch (roles per route).
    app.include_router(training.router, prefix="/api/v1")
    # Shadow runs: admins start and stop challengers, viewers read the evidence.
    app.include_router(shadow.router, prefix="/api/v1")
    app.include_router(health.router)
    if settings.serves_metrics:
        app.include_router(health.metrics_router)
    app.include_router(console_router)  # the operators' console at /
    install_error_model(app)  # the error bodies documented as answered; 405s list every method
    return app


def _refuse_demo_accounts(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        try:
            refuse_demo_accounts(session)
        except RuntimeError as exc:
            log.error("%s", exc)  # the reason, on its own line above the server's traceback
            raise


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
