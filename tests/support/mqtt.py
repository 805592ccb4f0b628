"""MQTT for the cloud tests: a plain client standing in for a gateway, and clearing a worker's session."""

from __future__ import annotations

import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocol.messages import (
    Ack,
    WireModel,
    decode,
    encode,
)
from protocol.topics import Channel, TopicSpace


class Publisher:
    """A plain paho client standing in for a gateway: publishes and records acks."""

    def __init__(self, broker: tuple[str, int], topics: TopicSpace) -> None:
        self.topics = topics
        self.acks: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.connect(*broker)
        self.client.loop_start()
        self.client.subscribe(topics.subscription(Channel.ACK), qos=1)
        if not self._subscribed.wait(5):
            raise AssertionError("test publisher: SUBACK not received")

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        ack = decode(Ack, msg.payload)
        with self._lock:
            key = (ack.gateway_id, ack.stream)
            self.acks[key] = max(self.acks.get(key, 0), ack.acked_seq)

    def ack_of(self, gateway_id: str, stream: str) -> int:
        """Highest ack seen for the stream (0 if none)."""
        with self._lock:
            return self.acks.get((gateway_id, stream), 0)

    def publish(
        self, gateway_id: str, channel: Channel, msg: WireModel | bytes, retain: bool = False
    ) -> None:
        """Publish QoS 1 and wait for the broker's PUBACK."""
        payload = msg if isinstance(msg, bytes) else encode(msg)
        info = self.client.publish(self.topics.topic(gateway_id, channel), payload, qos=1, retain=retain)
        info.wait_for_publish(5)

    def publish_raw(self, topic: str, payload: bytes) -> None:
        """Publish to an arbitrary topic (for unknown-channel tests)."""
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def clear_session(broker: tuple[str, int], client_id: str) -> None:
    """Drop a persistent session a test worker left on the broker."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True
    )
    client.connect(*broker)
    client.loop_start()
    time.sleep(0.1)
    client.disconnect()
    client.loop_stop()
