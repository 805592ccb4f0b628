"""The console's router: every page module's routes under one router, served at ``/``.

Hidden from the API's OpenAPI schema: the console is HTML for people, not an API.
"""

from __future__ import annotations

from fastapi import APIRouter

from cloud.console.pages import (
    alerts,
    assets,
    datasets,
    demo_look,
    gateway,
    gateways,
    line,
    login,
    models,
    notes,
    overview,
    rollout,
    rollouts,
    training,
)

router = APIRouter(include_in_schema=False)
for page in (
    login,
    overview,
    line,
    demo_look,
    notes,
    gateways,
    gateway,
    models,
    rollouts,
    rollout,
    alerts,
    assets,
    datasets,
    training,
):
    router.include_router(page.router)
