"""Gateway events (alarms) on the whole path, with a real agent, real ingest and a real broker:
an alarm raised while the cloud is away arrives later, once, and both outbox streams drain."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from cloud.db import make_engine
from cloud.db.models import Event
from edge_agent.outbox import Outbox
from protocol.manifest import ModelManifest
from protocol.messages import EventBatch, ResultBatch, encode, utcnow
from protocol.ota import ModelOffer
from protocol.signing import sign_manifest
from protocol.topics import Channel, TopicSpace
from simulators.fleet import bundled_manifest
from tests.support.e2e import Stack
from tests.support.mqtt import Publisher, clear_session
from tests.support.ota_kit import Signer, signed_desired
from tests.support.waiting import wait_for

FRAMES = 30


def _offer_signed_by_a_stranger(tmp_path: Path) -> ModelOffer:
    """A newer release signed by a key the gateway does not trust: refused before any download."""
    manifest = ModelManifest.model_validate_json(bundled_manifest().read_bytes())
    manifest = manifest.model_copy(update={"version": "99.0.0"})
    stranger = Signer(tmp_path / "keys", "stranger")
    return ModelOffer(
        manifest=manifest,
        signature=sign_manifest(manifest, stranger.key),
        artifact_url="http://127.0.0.1:9/never-fetched.onnx",
    )


def _desire(
    broker: tuple[str, int], topics: TopicSpace, gateway: str, offer: ModelOffer | None, cloud: Signer
) -> None:
    """Publish (or with None, clear) the gateway's retained desired state."""
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="")
    client.connect(*broker)
    client.loop_start()
    payload = b""
    if offer is not None:
        payload = encode(signed_desired(cloud, gateway, 1, {"defect": offer}))
    client.publish(topics.topic(gateway, Channel.DESIRED), payload, qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def _stored_events(db_url: str, gateway: str) -> list[tuple[uuid.UUID | None, int | None, str, str]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(Event.event_id, Event.seq, Event.kind, Event.level)
                .where(Event.gateway_id == gateway)
                .order_by(Event.seq)
            )
            return [(r[0], r[1], r[2], r[3]) for r in rows]
    finally:
        engine.dispose()


def _ota_config(stack: Stack, gateway: str, broker_url: str, cloud: Signer) -> dict[str, Any]:
    config = stack.agent_config(gateway, broker_url, fps=30)
    trusted = Signer(stack.folder / "keys", "trusted")
    config["ota"] = {"enabled": True, "trusted_keys": [str(trusted.pem)], "desired_keys": [str(cloud.pem)]}
    return config


def test_alarm_raised_while_ingest_is_down_lands_exactly_once(
    mosquitto: tuple[str, int], pg_url: str, tmp_path: Path, topic_space: TopicSpace, stack: Stack
) -> None:
    """The fault: no ingest is running while the gateway refuses an OTA offer (untrusted signature)
    and the line goes on producing results. The promise kept: the alarm rides the outbox's event
    stream like the results ride theirs; once ingest is back, the OTA failure event is stored
    exactly once, every result lands exactly once, and both streams' acks empty the outbox."""
    cloud = Signer(tmp_path / "keys", "cloud")
    truth = stack.frames(FRAMES, seed=81)
    broker_url = f"mqtt://{mosquitto[0]}:{mosquitto[1]}"
    settings = stack.cloud(pg_url, broker_url, share_group=None)
    gateway = "gw-alarm"
    _desire(mosquitto, topic_space, gateway, _offer_signed_by_a_stranger(tmp_path), cloud)
    try:
        with (
            stack.api(settings) as client,
            stack.agent(_ota_config(stack, gateway, broker_url, cloud)) as agent,
        ):
            wait_for(lambda: agent.outbox.events.last_seq >= 1, 30, "the OTA failure event")
            assert agent.wait_idle(60), "the agent did not process the folder"
            queued = [e.event_item() for e in agent.outbox.events.read_after(0, 100)]
            assert any(e.kind == "ota" and e.level == "error" for e in queued), queued
            assert agent.outbox.stats()[0] == FRAMES, "nothing may be acked while ingest is down"
            worker = stack.ingest(settings)  # the cloud comes back
            try:
                wait_for(lambda: agent.outbox.total_stats() == (0, 0), 60, "both streams to drain")
            finally:
                worker.stop()
                clear_session(mosquitto, worker.client_id)
            results = stack.results(client, gateway)
            response = client.get("/api/v1/events", params={"gateway": gateway, "kind": "ota"})
            assert response.status_code == 200, response.text
            served = response.json()["items"]
            last_event_seq = agent.outbox.events.last_seq
    finally:
        _desire(mosquitto, topic_space, gateway, None, cloud)
    stored = _stored_events(pg_url, gateway)
    assert [seq for _id, seq, _k, _l in stored] == list(range(1, last_event_seq + 1)), "each event once"
    assert {i for i, *_rest in stored} >= {e.id for e in queued}
    assert any(kind == "ota" and level == "error" for _i, _s, kind, level in stored)
    assert len(served) == sum(1 for *_rest, kind, _l in stored if kind == "ota")
    frames = Counter(str(r["frame"]) for r in results)
    assert set(frames) == set(truth.labels), "lost results"
    assert max(frames.values()) == 1, "doubled results"


def test_retained_ack_of_the_other_stream_comes_back_with_a_resend(
    mosquitto: tuple[str, int], pg_url: str, tmp_path: Path, topic_space: TopicSpace, stack: Stack
) -> None:
    """The fault: the cloud stores a gateway's events and results while the gateway is offline, and
    the ack topic is retained per gateway, so only the results' ack (the later one) is waiting when
    the gateway comes back; the events' ack was overwritten. The promise kept: the gateway re-sends
    its unacknowledged events on connect, ingest stores nothing twice and acks them again, and
    the outbox empties; the events stay stored once."""
    cloud = Signer(tmp_path / "keys", "cloud")
    stack.frames(FRAMES, seed=82)
    broker_url = f"mqtt://{mosquitto[0]}:{mosquitto[1]}"
    settings = stack.cloud(pg_url, broker_url, share_group=None)
    gateway = "gw-acks"
    config = _ota_config(stack, gateway, broker_url, cloud)
    _desire(mosquitto, topic_space, gateway, _offer_signed_by_a_stranger(tmp_path), cloud)
    try:
        with stack.api(settings):
            with stack.agent(config) as agent:  # ingest down: everything stays in the outbox
                wait_for(lambda: agent.outbox.events.last_seq >= 1, 30, "the OTA failure event")
                assert agent.wait_idle(60), "the agent did not process the folder"
            # The gateway is offline now. What it sent before its link dropped reaches the cloud:
            # its events, then its results, so the retained ack ends up the results stream's.
            box = Outbox(stack.gateway_dir / "outbox.db", 1 << 24)
            events_stream, results_stream = box.events.stream, box.results.stream
            held_events = box.events.read_after(0, 100)
            held_results = box.read_after(0, 1000)
            box.close()
            assert held_events
            assert len(held_results) == FRAMES
            worker = stack.ingest(settings)
            watcher = Publisher(mosquitto, topic_space)
            try:
                watcher.publish(
                    gateway,
                    Channel.EVENTS,
                    EventBatch(
                        gateway_id=gateway,
                        stream=events_stream,
                        sent_at=utcnow(),
                        items=tuple(e.event_item() for e in held_events),
                    ),
                )
                wait_for(lambda: watcher.ack_of(gateway, events_stream) == len(held_events), 30, "event ack")
                watcher.publish(
                    gateway,
                    Channel.RESULTS,
                    ResultBatch(
                        gateway_id=gateway,
                        stream=results_stream,
                        sent_at=utcnow(),
                        items=tuple(e.item() for e in held_results),
                    ),
                )
                wait_for(lambda: watcher.ack_of(gateway, results_stream) == FRAMES, 30, "results ack")
                stored_before = _stored_events(pg_url, gateway)
                assert len(stored_before) == len(held_events)

                with stack.agent(config) as agent:  # back online: only the results ack is retained
                    wait_for(lambda: agent.outbox.total_stats() == (0, 0), 60, "both streams to drain")
                    assert agent.outbox.events.acked_seq >= len(held_events)
            finally:
                watcher.close()
                worker.stop()
                clear_session(mosquitto, worker.client_id)
    finally:
        _desire(mosquitto, topic_space, gateway, None, cloud)
    stored = _stored_events(pg_url, gateway)
    ids = Counter(i for i, *_rest in stored)
    assert max(ids.values()) == 1, "an event was stored twice"
    assert {i for i, *_rest in stored_before} <= set(ids)
