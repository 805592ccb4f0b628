"""Capture orders per gateway: built from the open captures, published retained at QoS 1.

The database is the source of truth (``datasets`` rows still ``requested``); the retained
``<gw>/captures`` message is its copy on the broker, so a gateway offline when an operator asked
finds every open order when it returns. A publish that fails after the commit leaves the gateway's
row unpublished; :func:`republish` (a Celery beat task) sends the current documents again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.dataset_models import CaptureOrdersState, Dataset
from cloud.db.dialect import insert_ignore
from cloud.ota.desired import MqttDesiredPublisher
from protocol.captures import CaptureOrder, CaptureOrders
from protocol.messages import utcnow
from protocol.topics import Channel

log = logging.getLogger(__name__)
REQUESTED = "requested"


class OrdersPublisher(Protocol):
    """Something that puts capture orders on the broker."""

    def publish_orders(self, documents: Sequence[CaptureOrders]) -> None:
        """Publish each retained at QoS 1; raise RuntimeError if the broker did not take them."""


class MqttOrdersPublisher(MqttDesiredPublisher):
    """The desired-state publisher, publishing capture orders on their own channel."""

    def publish_orders(self, documents: Sequence[CaptureOrders]) -> None:
        self.publish_retained(Channel.CAPTURES, [(d.gateway_id, d) for d in documents], "capture orders")


def _order(row: Dataset) -> CaptureOrder:
    return CaptureOrder(
        capture_id=row.id,
        slot=row.slot,
        frames=row.requested_frames,
        label=row.label,
        note=row.note,
        max_bytes=row.max_bytes,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
    )


def current_orders(session: Session, gateway_ids: Iterable[str]) -> list[CaptureOrders]:
    """Each gateway's open orders at its stored revision (gateways never staged are left out)."""
    ids = sorted(set(gateway_ids))
    states = session.scalars(select(CaptureOrdersState).where(CaptureOrdersState.gateway_id.in_(ids)))
    open_rows = session.scalars(
        select(Dataset)
        .where(Dataset.gateway_id.in_(ids), Dataset.status == REQUESTED)
        .order_by(Dataset.requested_at, Dataset.id)
    )
    by_gateway: dict[str, list[CaptureOrder]] = {}
    for row in open_rows:
        by_gateway.setdefault(row.gateway_id, []).append(_order(row))
    return [
        CaptureOrders(
            gateway_id=state.gateway_id,
            revision=state.revision,
            orders=tuple(by_gateway.get(state.gateway_id, [])),
            issued_at=state.updated_at,
        )
        for state in sorted(states, key=lambda s: s.gateway_id)
    ]


def stage_orders(session: Session, gateway_ids: Iterable[str]) -> list[CaptureOrders]:
    """Bump each gateway's revision (rows locked in id order, as desired states are) and return
    the documents to publish once the caller commits."""
    ids = sorted(set(gateway_ids))
    if not ids:
        return []
    now = utcnow()
    session.execute(
        insert_ignore(session, CaptureOrdersState),
        [{"gateway_id": g, "revision": 0, "published": False, "updated_at": now} for g in ids],
    )
    rows = session.scalars(
        select(CaptureOrdersState)
        .where(CaptureOrdersState.gateway_id.in_(ids))
        .order_by(CaptureOrdersState.gateway_id)
        .with_for_update()
    )
    for row in rows:
        row.revision += 1
        row.published = False
        row.updated_at = now
    session.flush()
    return current_orders(session, ids)


def publish(
    sessions: sessionmaker[Session], publisher: OrdersPublisher, documents: Sequence[CaptureOrders]
) -> bool:
    """Publish committed documents and mark them published; False (logged) when the broker did not
    take them: the beat task's :func:`republish` tries again."""
    if not documents:
        return True
    try:
        publisher.publish_orders(documents)
    except (RuntimeError, OSError) as exc:
        log.warning("capture orders of %s not published (%s); the worker re-sends them",
                    ", ".join(d.gateway_id for d in documents), exc)  # fmt: skip
        return False
    with sessions.begin() as session:
        for document in documents:
            session.execute(
                update(CaptureOrdersState)
                .where(
                    CaptureOrdersState.gateway_id == document.gateway_id,
                    CaptureOrdersState.revision == document.revision,
                )
                .values(published=True)
            )
    return True


def republish(sessions: sessionmaker[Session], publisher: OrdersPublisher) -> int:
    """Publish again the documents of gateways with open orders or an unpublished revision, at their
    current revision (a gateway applies the same revision twice as once); how many were sent.

    Sent every time, not only after a failure: two API processes publishing one gateway's
    revisions at once may leave the older one retained, and this puts the newest back.
    """
    with sessions() as session:
        open_gateways = session.scalars(select(Dataset.gateway_id).where(Dataset.status == REQUESTED))
        unpublished = session.scalars(
            select(CaptureOrdersState.gateway_id).where(CaptureOrdersState.published.is_(False))
        )
        documents = current_orders(session, {*open_gateways, *unpublished})
    return len(documents) if publish(sessions, publisher, documents) else 0
