"""A gateway whose every free-text field carries HTML and script, published through the broker as an
agent would: its birth (agent version, CPU model), results (a damaged parcel's barcode, notes
and their frame names), events (message and details) and reported OTA state (a slot's error).

What it sends is valid on the wire: the protocol carries text, and it is the console's job to
show it as text.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocol.messages import GatewayState, ParcelOutput, decode
from protocol.ota import DesiredState, ModelRef, ReportedState, SlotReport
from protocol.topics import Channel, TopicSpace
from tests.support.machines import GATEWAY_MACHINE
from tests.support.messages import SHA, batch, gateway_event, item, new_stream, note, state
from tests.support.mqtt import Publisher

SCRIPT = "<script>window.__pwned=1</script>"
IMAGE = "<img src=x onerror=window.__pwned=1>"
ARCH = "<u>x86_64</u>"  # the field holds 32 characters at most
GATEWAY = "gw-hostile"
LINE = "line-hostile"
SLOT = "main"  # the slot of its birth's defect-cnn 1.0 (tests.support.messages.state)


class HostileGateway:
    """Publishes the hostile messages on ``broker`` under ``topics``; reads its desired state."""

    def __init__(self, broker: tuple[str, int], topics: TopicSpace) -> None:
        self.topics = topics
        self.publisher = Publisher(broker, topics)
        self._desired: DesiredState | None = None
        self._got_desired = threading.Condition()
        self._listener = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self._listener.on_message = self._on_desired
        self._listener.connect(*broker)
        self._listener.loop_start()
        self._listener.subscribe(topics.topic(GATEWAY, Channel.DESIRED), qos=1)

    def _on_desired(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._got_desired:
            self._desired = decode(DesiredState, msg.payload)
            self._got_desired.notify_all()

    def desired(self, timeout_s: float) -> DesiredState:
        """The desired state the cloud published for this gateway (waiting for one)."""
        with self._got_desired:
            if not self._got_desired.wait_for(lambda: self._desired is not None, timeout_s):
                raise AssertionError(f"no desired state for {GATEWAY} within {timeout_s} s")
            assert self._desired is not None
            return self._desired

    def come_online(self) -> None:
        """Birth, results of each kind and events, every free text hostile."""
        self.publisher.publish(GATEWAY, Channel.STATE, _state(online=True), retain=True)
        now = datetime.now(UTC)
        parcel = item(1, line=LINE, at=now, model="parcel-det").model_copy(
            update={
                "frame": SCRIPT,
                "output": ParcelOutput(
                    label="reject",
                    score=0.99,
                    track_id=1,
                    damaged=True,
                    barcode=SCRIPT,
                    symbology="<i>QR</i>",
                ),
            }
        )
        written = note(2, f"{SCRIPT} belt squeaks {IMAGE}", line=LINE, at=now, urgency="high")
        unsent = note(3, None, line=LINE, at=now + timedelta(seconds=1)).model_copy(update={"frame": IMAGE})
        self.publisher.publish(
            GATEWAY, Channel.RESULTS, batch(GATEWAY, new_stream(), [parcel, written, unsent])
        )
        for kind, message in (("ota", f"download failed: {SCRIPT}"), ("outbox_shed", f"shed {IMAGE}")):
            details = {"slot": SLOT, IMAGE: SCRIPT}
            self.publisher.publish(
                GATEWAY, Channel.EVENTS, gateway_event(GATEWAY, now, "error", kind, message, details)
            )

    def write_note(self, text: str) -> None:
        """One more maintenance note, on a stream of its own."""
        written = note(1, text, line=LINE, at=datetime.now(UTC), urgency="high")
        self.publisher.publish(GATEWAY, Channel.RESULTS, batch(GATEWAY, new_stream(), [written]))

    def refuse_update(self, desired: DesiredState) -> None:
        """Report the desired update refused, with a hostile error."""
        report = SlotReport(
            active=ModelRef(name="defect-cnn", version="1.0", sha256=SHA),
            phase="failed",
            error=f"smoke test: {IMAGE}",
        )
        reported = ReportedState(
            gateway_id=GATEWAY,
            desired_revision=desired.revision,
            rollout_id=desired.rollout_id,
            slots={SLOT: report},
            timestamp=datetime.now(UTC),
        )
        self.publisher.publish(GATEWAY, Channel.REPORTED, reported, retain=True)

    def close(self) -> None:
        """Go offline (so the demo's gateway list counts it as gone) and disconnect."""
        self.publisher.publish(GATEWAY, Channel.STATE, _state(online=False), retain=True)
        self.publisher.close()
        self._listener.disconnect()
        self._listener.loop_stop()


def _state(online: bool) -> GatewayState:
    """Its birth or death: both carry the agent version and machine, which each one replaces."""
    machine = GATEWAY_MACHINE.model_copy(update={"cpu_model": SCRIPT, "arch": ARCH})
    return state(GATEWAY, online, 1, line=LINE, machine=machine).model_copy(update={"agent_version": IMAGE})
