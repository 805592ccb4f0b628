"""Lightweight protocol-level virtual gateways for rollout tests and the OTA benchmark.

Not agents: each virtual gateway is a few fields of state behind a shared paho connection. It
subscribes to its retained ``desired`` topic, "installs" an offered version instantly (or fails,
or reports bad health, as told), and publishes a retained ReportedState, exactly as a real
agent's OTA client would on the wire.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocol.messages import ModelRef, decode, encode, version_key
from protocol.ota import DesiredState, ReportedState, SlotHealth, SlotReport
from protocol.topics import Channel, TopicSpace

GOOD_HEALTH = SlotHealth(
    inferences=500, errors=0, p95_latency_ms=18.0, defect_rate=0.05, mean_confidence=0.93
)
BAD_HEALTH = SlotHealth(
    inferences=500, errors=120, p95_latency_ms=95.0, defect_rate=0.4, mean_confidence=0.55
)


@dataclass
class VirtualGateway:
    """One gateway's slot state."""

    gateway_id: str
    active: ModelRef
    previous: ModelRef | None = None
    revision: int = 0
    phase: str = "committed"
    error: str | None = None
    health: SlotHealth = GOOD_HEALTH
    installed_at: dict[str, float] = field(default_factory=dict)


class VirtualFleet:
    """``gateway_ids`` spread over ``connections`` MQTT clients on one slot named ``slot``.

    ``fail_install`` versions fail their smoke test; ``unhealthy`` versions install but report bad
    health. ``offline`` gateways are not connected at start (``bring_online`` connects them later).
    """

    def __init__(
        self,
        broker: tuple[str, int],
        topics: TopicSpace,
        gateway_ids: Sequence[str],
        initial: ModelRef,
        slot: str = "main",
        connections: int = 10,
        fail_install: Sequence[str] = (),
        unhealthy: Sequence[str] = (),
    ) -> None:
        self.broker = broker
        self.topics = topics
        self.slot = slot
        self.fail_install = set(fail_install)
        self.unhealthy = set(unhealthy)
        self.gateways = {g: VirtualGateway(g, initial) for g in gateway_ids}
        self.desired_seen: dict[str, list[DesiredState]] = {g: [] for g in gateway_ids}
        self._lock = threading.Lock()
        ids = list(gateway_ids)
        n = max(1, min(connections, len(ids)))
        self._groups = [ids[i::n] for i in range(n)]
        self._clients: list[mqtt.Client] = []

    def start(self, timeout_s: float = 30.0) -> VirtualFleet:
        """Connect, publish every gateway's initial report, then subscribe to the desired topics."""
        for group in self._groups:
            client = mqtt.Client(
                callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"vfleet-{uuid.uuid4().hex[:10]}"
            )
            client.max_inflight_messages_set(1000)
            subscribed = threading.Event()
            client.on_message = self._on_message
            client.on_subscribe = lambda *_a, ev=subscribed: ev.set()
            client.connect(*self.broker)
            client.loop_start()
            self._clients.append(client)
            infos = [self._publish_report(client, self.gateways[g]) for g in group]
            for info in infos:
                info.wait_for_publish(timeout_s)
            client.subscribe([(self.topics.topic(g, Channel.DESIRED), 1) for g in group])
            if not subscribed.wait(timeout_s):
                raise RuntimeError("virtual fleet: SUBACK not received")
        return self

    def stop(self) -> None:
        """Disconnect every client and stop their network threads."""
        for client in self._clients:
            client.disconnect()
            client.loop_stop()
        self._clients.clear()

    def _publish_report(self, client: mqtt.Client, gw: VirtualGateway) -> mqtt.MQTTMessageInfo:
        report = ReportedState(
            gateway_id=gw.gateway_id,
            desired_revision=gw.revision,
            rollout_id=None,
            slots={
                self.slot: SlotReport(
                    active=gw.active,
                    previous=gw.previous,
                    phase=gw.phase,
                    error=gw.error,
                    health=gw.health,  # type: ignore[arg-type]
                )
            },
            timestamp=datetime.now(UTC),
        )
        return client.publish(
            self.topics.topic(gw.gateway_id, Channel.REPORTED), encode(report), qos=1, retain=True
        )

    def _on_message(self, client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        desired = decode(DesiredState, msg.payload)
        with self._lock:
            gw = self.gateways[desired.gateway_id]
            self.desired_seen[gw.gateway_id].append(desired)
            if desired.revision <= gw.revision:
                return  # a retained copy of what was already acted on
            gw.revision = desired.revision
            offer = desired.slots.get(self.slot)
            if offer is not None:
                self._install(
                    gw,
                    offer.manifest.name,
                    offer.manifest.version,
                    offer.manifest.sha256,
                    offer.allow_downgrade,
                )
        self._publish_report(client, gw)

    def _install(self, gw: VirtualGateway, name: str, version: str, sha: str, downgrade: bool) -> None:
        target = ModelRef(name=name, version=version, sha256=sha)
        if target == gw.active:
            gw.phase, gw.error = "committed", None
            return
        if version_key(version) < version_key(gw.active.version) and not downgrade:
            gw.phase, gw.error = "failed", f"version {version} older than installed {gw.active.version}"
            return
        if version in self.fail_install:
            gw.phase, gw.error = "failed", f"smoke test of {version} failed: golden output mismatch"
            return
        gw.previous, gw.active = gw.active, target
        gw.phase, gw.error = "committed", None
        gw.health = BAD_HEALTH if version in self.unhealthy else GOOD_HEALTH
        gw.installed_at[version] = time.monotonic()

    def versions(self) -> dict[str, str]:
        """Each gateway's active version."""
        with self._lock:
            return {g: gw.active.version for g, gw in self.gateways.items()}

    def count_on(self, version: str) -> int:
        """How many gateways run ``version``."""
        return sum(1 for v in self.versions().values() if v == version)


def wait_for(
    predicate: Callable[[], bool], timeout_s: float, what: str, step: Callable[[], object] | None = None
) -> None:
    """Poll ``predicate`` (calling ``step`` between polls) until true; AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        if step is not None:
            step()
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
