"""Camera frames -> edge agent -> broker -> ingest -> database -> API, on real parts.

Runs twice: on the machine's Mosquitto with PostgreSQL (production shape) and on the embedded
broker with SQLite (the demo's shape). Every frame's result must arrive exactly once, with the
model that produced it, and the gateway's outbox must empty because the cloud acknowledged it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloud.embedded_broker import EmbeddedBroker
from protocol.manifest import load_manifest
from simulators.fleet import bundled_manifest
from tests.support.e2e import Stack
from tests.support.mqtt import clear_session
from tests.support.waiting import wait_for

FRAMES = 40


@dataclass(frozen=True)
class Backends:
    broker_url: str
    db_url: str
    share_group: str | None


@pytest.fixture(params=["mosquitto+postgresql", "embedded+sqlite"])
def backends(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backends]:
    if request.param == "mosquitto+postgresql":
        host, port = request.getfixturevalue("mosquitto")
        yield Backends(f"mqtt://{host}:{port}", request.getfixturevalue("pg_url"), "ingest")
        return
    broker = EmbeddedBroker(port=0)
    broker.start()
    try:
        # amqtt delivers no $share subscriptions: the embedded profile runs one plain subscriber.
        yield Backends(broker.url, f"sqlite:///{tmp_path / 'cloud.db'}", None)
    finally:
        broker.stop()


def test_every_frame_arrives_exactly_once(backends: Backends, stack: Stack) -> None:
    truth = stack.frames(FRAMES, seed=4242)
    manifest = load_manifest(bundled_manifest())
    settings = stack.cloud(backends.db_url, backends.broker_url, backends.share_group)
    gateway = "gw-e2e"
    with stack.api(settings) as client:
        worker = stack.ingest(settings)
        try:
            config = stack.agent_config(gateway, backends.broker_url)
            with stack.agent(config) as agent:
                wait_for(
                    lambda: len(stack.results(client, gateway)) >= FRAMES, 90, f"{FRAMES} results in the API"
                )
                # The outbox empties only through the cloud's end-to-end ack, never on PUBACK alone.
                wait_for(lambda: agent.outbox.stats()[0] == 0, 30, "the outbox to be acknowledged empty")
                gateways = client.get("/api/v1/gateways").json()
                assert [(g["id"], g["online"]) for g in gateways] == [(gateway, True)]
                assert gateways[0]["models"][0]["sha256"] == manifest.sha256
            wait_for(lambda: client.get(f"/api/v1/gateways/{gateway}").json()["online"] is False, 20, "death")
        finally:
            worker.stop()
            if backends.share_group is not None:
                clear_session(("127.0.0.1", 1883), worker.client_id)

        results = stack.results(client, gateway)
    frames = Counter(r["frame"] for r in results)
    assert frames == Counter(list(truth.labels)), "each frame's result must be stored exactly once"
    assert sorted(r["seq"] for r in results) == list(range(1, FRAMES + 1))
    assert {(r["model_name"], r["model_version"], r["model_sha256"]) for r in results} == {
        (manifest.name, manifest.version, manifest.sha256)
    }
    correct = sum(r["label"] == truth.labels[r["frame"]] for r in results)
    # The bundled model scores 0.99 on unseen frames of this look; 0.8 leaves room, chance is 0.2.
    assert correct / FRAMES >= 0.8, f"only {correct}/{FRAMES} labels match the ground truth"
