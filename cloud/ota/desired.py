"""Desired state per gateway: stored with a monotonic revision, signed, published retained at QoS 1.

The database row is the source of truth; the retained message is its copy on the broker, so a
gateway offline during a rollout finds its latest desired state when it returns. Each statement
is signed with the cloud's desired-state key and expires (``desired_ttl_h``); the rollout tick
re-signs a statement halfway through its life (:func:`refresh_expiring`), so only one held back
from the gateway ever goes stale there.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.config import CloudSettings
from cloud.db.dialect import insert_ignore
from cloud.db.models import GatewayDesired
from cloud.ota.desired_key import desired_key
from protocol.desired_signing import sign_desired
from protocol.messages import WireModel, encode, utcnow
from protocol.ota import DesiredState, ModelOffer
from protocol.topics import Channel, TopicSpace

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT_S = 10.0


def stage_desired(
    session: Session,
    settings: CloudSettings,
    offers: dict[str, ModelOffer],
    slot: str,
    rollout_id: str | None,
) -> list[DesiredState]:
    """Set ``slot`` of each gateway in ``offers`` (gateway -> offer) with the next revision.

    Rows are locked in id order so concurrent callers (API, Celery) never deadlock; the caller
    commits and then publishes what this returns. Challengers stay as they were: a rollout that
    promotes a slot's challenger offers its release in ``slots``, and the gateway, finding the
    challenger serving, drops it by itself.
    """

    def change(gateway_id: str, slots: dict[str, ModelOffer], _challengers: dict[str, ModelOffer]) -> None:
        slots[slot] = offers[gateway_id]

    return _stage(session, settings, sorted(offers), change, rollout_id)


def stage_challengers(
    session: Session, settings: CloudSettings, offers: dict[str, ModelOffer | None], slot: str
) -> list[DesiredState]:
    """Set (an offer) or remove (None) the challenger of ``slot`` on each gateway in ``offers``."""

    def change(gateway_id: str, _slots: dict[str, ModelOffer], challengers: dict[str, ModelOffer]) -> None:
        offer = offers[gateway_id]
        if offer is None:
            challengers.pop(slot, None)
        else:
            challengers[slot] = offer

    return _stage(session, settings, sorted(offers), change, None, keep_rollout=True)


def refresh_expiring(session: Session, settings: CloudSettings) -> list[DesiredState]:
    """Re-sign, at the next revision, every desired state past half its life; the caller commits
    and publishes. The content stays as it was: a gateway finds it already serves it."""
    due = utcnow() - timedelta(hours=settings.desired_ttl_h / 2)
    ids = list(
        session.scalars(
            select(GatewayDesired.gateway_id)
            .where(GatewayDesired.updated_at < due, GatewayDesired.revision > 0)
            .order_by(GatewayDesired.gateway_id)
        )
    )

    def unchanged(
        _gateway_id: str, _slots: dict[str, ModelOffer], _challengers: dict[str, ModelOffer]
    ) -> None:
        return None

    return _stage(session, settings, ids, unchanged, None, keep_rollout=True)


def _stage(
    session: Session,
    settings: CloudSettings,
    ids: list[str],
    change: Callable[[str, dict[str, ModelOffer], dict[str, ModelOffer]], None],
    rollout_id: str | None,
    keep_rollout: bool = False,
) -> list[DesiredState]:
    """Apply ``change`` to each gateway's slots and challengers under a row lock, at the next revision."""
    if not ids:
        return []
    now = utcnow()
    session.execute(
        insert_ignore(session, GatewayDesired),
        [{"gateway_id": g, "revision": 0, "document": {}, "updated_at": now} for g in ids],
    )
    rows = session.scalars(
        select(GatewayDesired)
        .where(GatewayDesired.gateway_id.in_(ids))
        .order_by(GatewayDesired.gateway_id)
        .with_for_update()
    )
    states = []
    key = desired_key(settings)
    expires = now + timedelta(hours=settings.desired_ttl_h)
    for row in rows:
        document = row.document or {}
        slots = {k: ModelOffer.model_validate(v) for k, v in (document.get("slots") or {}).items()}
        challengers = {
            k: ModelOffer.model_validate(v) for k, v in (document.get("challengers") or {}).items()
        }
        change(row.gateway_id, slots, challengers)
        state = sign_desired(
            DesiredState(
                gateway_id=row.gateway_id,
                revision=row.revision + 1,
                rollout_id=document.get("rollout_id") if keep_rollout else rollout_id,
                slots=slots,
                issued_at=now,
                challengers=challengers,
                expires_at=expires,
            ),
            key,
        )
        row.revision = state.revision
        row.document = state.model_dump(mode="json")
        row.updated_at = now
        states.append(state)
    return states


class DesiredPublisher(Protocol):
    """Something that puts desired states on the broker."""

    def publish(self, states: Sequence[DesiredState]) -> None:
        """Publish each state retained at QoS 1; raise RuntimeError if the broker did not take them."""


class MqttDesiredPublisher:
    """A paho client that publishes retained desired states and waits for every PUBACK."""

    def __init__(self, settings: CloudSettings) -> None:
        self.topics: TopicSpace = settings.topics
        self._settings = settings
        self._lock = threading.Lock()
        self._client: mqtt.Client | None = None

    def _connect(self) -> mqtt.Client:
        if self._client is not None and self._client.is_connected():
            return self._client
        s = self._settings
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"factory-desired-{uuid.uuid4().hex[:8]}",
        )
        if s.broker_username:
            password = s.broker_password.get_secret_value() if s.broker_password else None
            client.username_pw_set(s.broker_username, password)
        if s.broker.tls:
            client.tls_set(ca_certs=s.broker_ca_file)
        connected = threading.Event()
        client.on_connect = lambda _c, _u, _f, reason, _p: connected.set() if not reason.is_failure else None
        client.connect(s.broker.host, s.broker.port)
        client.loop_start()
        if not connected.wait(PUBLISH_TIMEOUT_S):
            client.loop_stop()
            raise RuntimeError(f"desired-state publisher: no CONNACK from {s.broker_url}")
        self._client = client
        return client

    def publish(self, states: Sequence[DesiredState]) -> None:
        self.publish_retained(Channel.DESIRED, [(s.gateway_id, s) for s in states], "desired state")

    def publish_retained(
        self, channel: Channel, messages: Sequence[tuple[str, WireModel]], what: str
    ) -> None:
        """Publish each (gateway id, message) retained at QoS 1 on its ``channel`` and wait for every
        PUBACK; RuntimeError naming the gateway whose ``what`` the broker did not take."""
        with self._lock:
            client = self._connect()
            infos = [
                client.publish(self.topics.topic(gateway_id, channel), encode(message), qos=1, retain=True)
                for gateway_id, message in messages
            ]
            for (gateway_id, _message), info in zip(messages, infos, strict=True):
                info.wait_for_publish(PUBLISH_TIMEOUT_S)
                if not info.is_published():
                    raise RuntimeError(f"{what} of {gateway_id} not acknowledged by the broker")
        log.info("published %d %s(s)", len(messages), what)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
                self._client = None
