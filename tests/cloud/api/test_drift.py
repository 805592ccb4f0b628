"""Drift per slot over the API: a gateway's (404 when unknown) and a line's, with the words, the
directions and since when from the events, and the state from the newer of telemetry and events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.service import ingest_messages
from protocol.topics import Channel, TopicSpace
from tests.support.drift_wire import as_inbound, drift_event, drift_telemetry
from tests.support.messages import T0, inbound, state
from tests.support.testclient import TestClient


@pytest.fixture
def client(db_url: str, topic_space: TopicSpace) -> Iterator[TestClient]:
    """gw-a (confirmed on camera-1, main ok) and gw-b (nothing watched) on line-1."""
    at = T0 + timedelta(minutes=1)
    messages = [
        inbound(topic_space, "gw-a", Channel.STATE, state("gw-a", True, 1, at=T0)),
        inbound(topic_space, "gw-b", Channel.STATE, state("gw-b", True, 1, at=T0)),
        as_inbound(topic_space, drift_event("gw-a", at, "suspected", slot="camera-1", moved="tint:down")),
        as_inbound(
            topic_space,
            drift_event("gw-a", at + timedelta(seconds=30), "confirmed", slot="camera-1",
                        moved="tint:down,score:up", score_ratio=1.41),
        ),
        as_inbound(topic_space, drift_telemetry("gw-a", at + timedelta(seconds=32),
                                                [("camera-1", "confirmed", ("tint", "score")),
                                                 ("main", "ok", ())])),
    ]  # fmt: skip
    with TestClient(create_app(CloudSettings(db_url=db_url, topic_root=topic_space.root))) as running:
        engine = make_engine(db_url)
        try:
            ingest_messages(make_sessionmaker(engine), messages, topic_space)
        finally:
            engine.dispose()
        yield running


def test_a_gateways_drift_per_slot(client: TestClient) -> None:
    answer = client.get("/api/v1/gateways/gw-a/drift")
    assert answer.status_code == 200, answer.text
    first, second = answer.json()
    assert first["slot"] == "camera-1"
    assert first["state"] == "confirmed"
    assert first["summary"] == "colour moved (tint down), scores up 1.4x"
    assert first["moved"] == [{"signal": "tint", "direction": "down"}, {"signal": "score", "direction": "up"}]
    assert (first["cause"], first["score_ratio"], first["ratio"], first["window"]) == (
        "look",
        1.41,
        10.0,
        100,
    )
    assert first["since"].startswith((T0 + timedelta(minutes=1, seconds=30)).isoformat()[:19])
    assert first["reported_at"].startswith((T0 + timedelta(minutes=1, seconds=32)).isoformat()[:19])
    assert (second["slot"], second["state"], second["summary"], second["since"]) == (
        "main",
        "ok",
        "nothing moved",
        None,
    )
    assert second["model"] == "defect-cnn 1.0", "the slot's model from the birth when no event names it"
    assert client.get("/api/v1/gateways/gw-b/drift").json() == []
    assert client.get("/api/v1/gateways/gw-x/drift").status_code == 404


def test_a_lines_drift_lists_its_gateways_slots(client: TestClient) -> None:
    rows = client.get("/api/v1/lines/line-1/drift").json()
    assert [(r["gateway_id"], r["slot"], r["state"]) for r in rows] == [
        ("gw-a", "camera-1", "confirmed"),
        ("gw-a", "main", "ok"),
    ]
    assert client.get("/api/v1/lines/line-9/drift").json() == []
