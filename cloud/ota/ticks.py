"""Advance every running rollout once and re-sign ageing desired states: what a Celery beat tick
(or a test) calls."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.config import CloudSettings
from cloud.db.models import Rollout
from cloud.ota.desired import DesiredPublisher, refresh_expiring
from cloud.ota.rollouts import advance
from cloud.registry.service import RegistryError

log = logging.getLogger(__name__)


def tick_all(sessions: sessionmaker[Session], settings: CloudSettings, publisher: DesiredPublisher) -> int:
    """Advance each running rollout in its own transaction, then publish; return how many were ticked.

    The row lock makes two overlapping ticks (a slow beat, two workers) take turns on a rollout.
    """
    with sessions() as session:
        ids = list(session.scalars(select(Rollout.id).where(Rollout.state == "running")))
    for rollout_id in ids:
        with sessions.begin() as session:
            rollout = session.scalar(select(Rollout).where(Rollout.id == rollout_id).with_for_update())
            if rollout is None:
                continue
            try:
                states = advance(session, settings, rollout)
            except RegistryError as exc:
                log.error("rollout %s cannot advance: %s", rollout_id, exc)
                continue
        if states:
            publisher.publish(states)
    with sessions.begin() as session:
        refreshed = refresh_expiring(session, settings)
    if refreshed:
        publisher.publish(refreshed)
        log.info("re-signed %d desired state(s) halfway through their life", len(refreshed))
    return len(ids)
