"""Rollout of a small model to 1,000 protocol-level virtual gateways on the local Mosquitto.

The whole cloud path runs: registry -> rollout engine ticks -> retained desired states -> virtual
gateways install and report -> ingest process stores reported states -> next wave. Printed: the
time from creating the rollout until every gateway reports the new version (goal <= 60 s), and
the baseline: publishing 1,000 retained messages of the same size and receiving them all.

    .venv/bin/python -m bench.ota_rollout [--gateways 1000] [--waves 1,10%,50%,100%]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from bench.common import report
from bench.ingest_throughput import fresh_database, ingest_process
from bench.ota_fleet import VirtualFleet, wait_for
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker
from cloud.db.models import GatewayReported, ModelVersion, Rollout
from cloud.ota import rollouts as engine
from cloud.ota.desired import MqttDesiredPublisher
from cloud.ota.schemas import RolloutCreate, Target, Thresholds
from cloud.ota.ticks import tick_all
from cloud.registry.service import create_version, offer_for, put_chunk
from cloud.registry.store import LocalStore
from protocol.manifest import ModelManifest
from protocol.messages import ModelRef, encode
from protocol.ota import DesiredState
from protocol.signing import sign_manifest
from protocol.topics import Channel, TopicSpace

BROKER = ("127.0.0.1", 1883)


def _manifest(version: str, data: bytes) -> ModelManifest:
    import hashlib

    return ModelManifest.model_validate(
        {
            "name": "defect-cnn", "version": version, "task": "defect", "artifact": "model.onnx",
            "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data),
            "inputs": [{"name": "input", "shape": ["batch", 3, 64, 64]}],
            "outputs": [{"name": "probs", "shape": ["batch", 2]}],
            "preprocessing": {"resize": [64, 64]}, "labels": ["ok", "scratch"], "good_label": "ok",
            "created_at": datetime.now(UTC).isoformat(),
        }
    )  # fmt: skip


def baseline(topics: TopicSpace, payload: bytes, count: int) -> float:
    """Seconds to publish ``count`` retained QoS 1 messages and receive them all on a subscriber."""
    received = threading.Event()
    got = [0]
    sub = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bl-sub-{uuid.uuid4().hex[:6]}"
    )
    pub = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bl-pub-{uuid.uuid4().hex[:6]}"
    )
    pub.max_inflight_messages_set(1000)
    subscribed = threading.Event()

    def on_message(*_a: object) -> None:
        got[0] += 1
        if got[0] >= count:
            received.set()

    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    for c in (sub, pub):
        c.connect(*BROKER)
        c.loop_start()
    sub.subscribe(topics.subscription(Channel.DESIRED), qos=1)
    subscribed.wait(10)
    started = time.perf_counter()
    infos = [
        pub.publish(topics.topic(f"bl-{i:04d}", Channel.DESIRED), payload, qos=1, retain=True)
        for i in range(count)
    ]
    for info in infos:
        info.wait_for_publish(30)
    received.wait(60)
    elapsed = time.perf_counter() - started
    for i in range(count):  # clear the retained copies
        pub.publish(topics.topic(f"bl-{i:04d}", Channel.DESIRED), b"", qos=1, retain=True)
    for c in (sub, pub):
        c.disconnect()
        c.loop_stop()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateways", type=int, default=1000)
    parser.add_argument("--waves", default="1,10%,50%,100%")
    parser.add_argument("--connections", type=int, default=20, help="MQTT connections the fleet shares")
    parser.add_argument("--tick", type=float, default=0.25, help="seconds between rollout ticks")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    topics = TopicSpace(f"bench-{uuid.uuid4().hex[:8]}/factory/v1")
    ids = [f"vgw-{i:04d}" for i in range(args.gateways)]
    with tempfile.TemporaryDirectory() as tmp, fresh_database() as db_url, ingest_process(db_url, topics):
        settings = CloudSettings(
            db_url=db_url, topic_root=topics.root, artifact_dir=str(Path(tmp) / "artifacts")
        )
        sessions = make_sessionmaker(make_engine(db_url))
        key = Ed25519PrivateKey.generate()
        store = LocalStore(Path(settings.artifact_dir))
        manifests = {}
        for version in ("1.0", "1.1"):
            data = f"small model {version}".encode() * 1000
            manifest = _manifest(version, data)
            with sessions.begin() as session:
                put_chunk(session, store, manifest.sha256, len(data), 0, data)
                create_version(session, settings, manifest, sign_manifest(manifest, key), None, "bench")
            manifests[version] = manifest
        old = ModelRef(name="defect-cnn", version="1.0", sha256=manifests["1.0"].sha256)
        fleet = VirtualFleet(BROKER, topics, ids, old, connections=args.connections).start(timeout_s=60)
        publisher = MqttDesiredPublisher(settings)
        try:

            def reported() -> int:
                with sessions() as s:
                    return s.scalar(select(func.count()).select_from(GatewayReported)) or 0

            wait_for(lambda: reported() >= len(ids), 120, "ingest to store every initial report")
            started = time.perf_counter()
            with sessions.begin() as session:
                req = RolloutCreate(
                    model_name="defect-cnn", version="1.1", target=Target(gateways=ids), waves=args.waves,
                    bake_s=0, thresholds=Thresholds(install_timeout_s=120),
                )  # fmt: skip
                rollout_id = engine.create_rollout(session, req, "bench").id
            ticks = 0

            def tick() -> None:
                nonlocal ticks
                ticks += 1
                tick_all(sessions, settings, publisher)
                time.sleep(args.tick)

            wait_for(lambda: fleet.count_on("1.1") == len(ids), 300, "every gateway on 1.1", tick)
            all_on_new = time.perf_counter() - started

            def state() -> str:
                with sessions() as s:
                    return s.scalar(select(Rollout.state).where(Rollout.id == rollout_id)) or "?"

            wait_for(lambda: state() in ("completed", "aborted"), 120, "the rollout to close", tick)
            closed = time.perf_counter() - started
            final = state()
        finally:
            fleet.stop()
            publisher.close()
        with sessions() as session:
            newest = session.scalars(select(ModelVersion).where(ModelVersion.version == "1.1")).one()
            offer = offer_for(settings, newest)
        sample = DesiredState(
            gateway_id="bl-0000", revision=1, slots={"main": offer}, issued_at=datetime.now(UTC)
        )
        base = baseline(TopicSpace(f"bench-{uuid.uuid4().hex[:8]}/factory/v1"), encode(sample), len(ids))
    waves = engine.wave_sizes(args.waves, len(ids))
    report(
        f"OTA rollout to {len(ids)} virtual gateways ({args.connections} MQTT connections, waves {waves}, bake 0 s)",
        [
            ("all report the new version", f"{all_on_new:.1f} s (goal <= 60 s)"),
            ("rollout state 'completed'", f"{closed:.1f} s ({final}, {ticks} ticks every {args.tick} s)"),
            (
                f"baseline: {len(ids)} retained desired msgs",
                f"{base:.2f} s publish -> all received ({len(encode(sample))} B each)",
            ),
        ],
    )


if __name__ == "__main__":
    main()
