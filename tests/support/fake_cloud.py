"""A small in-test cloud for the agent's tests: collects batches and events, acks the contiguous prefix."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocol.messages import Ack, EventBatch, GatewayState, ResultBatch, decode, encode, utcnow
from protocol.topics import Channel, TopicSpace


class FakeCloud:
    """A paho subscriber standing in for cloud ingest: collects batches, acks the contiguous prefix."""

    def __init__(
        self, broker: tuple[str, int], topics: TopicSpace, gateway_id: str, ack: bool = True
    ) -> None:
        self.topics = topics
        self.gateway_id = gateway_id
        self.ack = ack
        self.batches: list[ResultBatch] = []
        self.states: list[GatewayState] = []
        self.telemetry = 0
        self.events: list[bytes] = []
        self._seen: dict[str, set[int]] = {}
        self._event_ids: set[uuid.UUID] = set()
        self._lock = threading.Lock()
        self._client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="")
        self._client.on_message = self._on_message
        self._client.on_connect = lambda c, *_: c.subscribe(topics.subscription(None, gateway_id), qos=1)
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.connect(*broker)
        self._client.loop_start()
        assert self._subscribed.wait(5), "fake cloud could not subscribe"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        channel = self.topics.parse(msg.topic).channel
        payload = bytes(msg.payload)
        if channel is Channel.RESULTS:
            batch = decode(ResultBatch, payload)
            with self._lock:
                self.batches.append(batch)
                seen = self._seen.setdefault(batch.stream, set())
                seen.update(item.seq for item in batch.items)
                contiguous = 0
                while contiguous + 1 in seen:
                    contiguous += 1
            if self.ack:
                ack = Ack(
                    gateway_id=self.gateway_id,
                    stream=batch.stream,
                    acked_seq=contiguous,
                    committed_at=utcnow(),
                )
                client.publish(self.topics.topic(self.gateway_id, Channel.ACK), encode(ack), qos=1)
        elif channel is Channel.STATE:
            if payload:
                with self._lock:
                    self.states.append(decode(GatewayState, payload))
        elif channel is Channel.TELEMETRY:
            self.telemetry += 1
        elif channel is Channel.EVENTS:
            self._on_events(client, payload)

    def _on_events(self, client: mqtt.Client, payload: bytes) -> None:
        """Keep each event once, as the cloud does (by id), as a flat item; ack like results."""
        batch = decode(EventBatch, payload)
        with self._lock:
            for event in batch.items:
                if event.id not in self._event_ids:
                    self._event_ids.add(event.id)
                    self.events.append(event.model_dump_json(exclude={"replayed"}).encode())
            seen = self._seen.setdefault(batch.stream, set())
            seen.update(event.seq for event in batch.items)
            contiguous = (batch.oldest_held_seq or 1) - 1
            while contiguous + 1 in seen:
                contiguous += 1
        if self.ack:
            ack = Ack(
                gateway_id=self.gateway_id, stream=batch.stream, acked_seq=contiguous, committed_at=utcnow()
            )
            client.publish(self.topics.topic(self.gateway_id, Channel.ACK), encode(ack), qos=1)

    def items(self) -> list[Any]:
        """Every received item, in arrival order."""
        with self._lock:
            return [item for batch in self.batches for item in batch.items]

    def frames(self) -> set[str]:
        """Distinct frame references received."""
        return {item.frame for item in self.items()}

    def clear_retained(self) -> None:
        """Remove the retained state so the broker keeps nothing from this test."""
        self._client.publish(
            self.topics.topic(self.gateway_id, Channel.STATE), b"", qos=1, retain=True
        ).wait_for_publish(5)

    def close(self) -> None:
        """Clean up retained state and disconnect."""
        self.clear_retained()
        self._client.disconnect()
        self._client.loop_stop()
