"""Liveness and metrics endpoints; ``/metrics`` is mounted only when the settings say so."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from cloud.api.deps import SessionDep
from cloud.api.schemas import HealthPublic

log = logging.getLogger(__name__)
router = APIRouter(tags=["ops"])
metrics_router = APIRouter(tags=["ops"])


@router.get("/healthz", responses={503: {"model": HealthPublic}})
def healthz(session: SessionDep, response: Response) -> HealthPublic:
    """200 when the database answers, 503 otherwise."""
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("health check: database unreachable: %s", exc)
        response.status_code = 503
        return HealthPublic(status="degraded", database="unreachable")
    return HealthPublic(status="ok", database="ok")


@metrics_router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text exposition of this app's own registry."""
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
