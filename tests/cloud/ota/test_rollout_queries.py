"""The rollout API reads a rollout's reported states in bulk: its SQL does not grow with the fleet."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.service import ingest_messages
from cloud.ota.ticks import tick_all
from protocol.messages import ModelRef
from protocol.ota import ReportedState, SlotHealth, SlotReport
from protocol.topics import Channel, TopicSpace
from tests.support.database import count_statements
from tests.support.messages import SHA, inbound, state
from tests.support.releases import RecordingPublisher, make_release, register
from tests.support.testclient import TestClient
from tests.support.tokens import bearer, mint_tokens

# Two rollouts may not update the same gateway's slot at once: the small one takes the first 5,
# the large one the other 50.
FLEET = [f"gw-{i:03d}" for i in range(55)]
SMALL, LARGE = FLEET[:5], FLEET[5:]
HEALTHY = SlotHealth(inferences=100, errors=0, p95_latency_ms=30.0, defect_rate=0.1, mean_confidence=0.9)


class Fleet:
    """The API over a database with two registered versions, and a way to make gateways report."""

    def __init__(self, client: TestClient, settings: CloudSettings, topics: TopicSpace, admin: str) -> None:
        self.client, self.settings, self.topics = client, settings, topics
        self.admin = bearer(admin)
        self.publisher = RecordingPublisher()

    def report(self, revisions: dict[str, int], version: str) -> None:
        """Each gateway of ``revisions`` reports its 'main' slot on ``version``, healthy."""
        slot = SlotReport(
            active=ModelRef(name="defect-cnn", version=version, sha256=SHA), phase="committed", health=HEALTHY
        )
        messages = [
            inbound(
                self.topics,
                gw,
                Channel.REPORTED,
                ReportedState(
                    gateway_id=gw, desired_revision=rev, slots={"main": slot}, timestamp=datetime.now(UTC)
                ),
            )
            for gw, rev in revisions.items()
        ]
        engine = make_engine(self.settings.db_url)
        try:
            ingest_messages(make_sessionmaker(engine), messages, self.topics)
        finally:
            engine.dispose()

    def connect(self, gateways: list[str]) -> None:
        """Each of ``gateways`` sends its birth (and no reported state)."""
        messages = [inbound(self.topics, gw, Channel.STATE, state(gw, True, 1)) for gw in gateways]
        engine = make_engine(self.settings.db_url)
        try:
            ingest_messages(make_sessionmaker(engine), messages, self.topics)
        finally:
            engine.dispose()

    def start(self, gateways: list[str]) -> str:
        """A one-wave rollout of 1.1 to ``gateways``, ticked once so every gateway is started."""
        request = {"model_name": "defect-cnn", "version": "1.1", "target": {"gateways": gateways},
                   "waves": "100%", "bake_s": 600}  # fmt: skip
        answer = self.client.post("/api/v1/rollouts", json=request, headers=self.admin)
        assert answer.status_code == 201, answer.text
        engine = make_engine(self.settings.db_url)
        try:
            tick_all(make_sessionmaker(engine), self.settings, self.publisher)
        finally:
            engine.dispose()
        return str(answer.json()["id"])

    def statements(self, path: str) -> tuple[int, Any]:
        """How many SQL statements answering GET ``path`` ran, and the answer."""
        return count_statements(self.client, path)


@pytest.fixture
def fleet(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Fleet]:
    settings = CloudSettings(db_url=db_url, artifact_dir=str(tmp_path / "artifacts"))  # demo: open reads
    admin = mint_tokens(db_url)["admin"]  # also migrates
    key = Ed25519PrivateKey.generate()
    register(settings, make_release(tmp_path / "old", "1.0", key))
    register(settings, make_release(tmp_path / "new", "1.1", key))
    with TestClient(create_app(settings)) as client:
        made = Fleet(client, settings, topic_space, admin)
        # Half the fleet reported the old version before; the other half never reported at all,
        # which costs a query of its own per gateway when states are read one by one.
        made.report({gw: 0 for gw in FLEET[::2]}, "1.0")
        made.connect(FLEET[1::2])  # connected (a rollout refuses unknown ids), no reported state
        yield made


def test_rollout_detail_costs_the_same_sql_for_5_and_50_gateways(fleet: Fleet) -> None:
    small, large = fleet.start(SMALL), fleet.start(LARGE)
    # Some of each rollout's gateways install the new version, so statuses differ.
    revisions = {s.gateway_id: s.revision for s in fleet.publisher.published}
    fleet.report({gw: revisions[gw] for gw in FLEET[:25:2]}, "1.1")

    small_sql, small_body = fleet.statements(f"/api/v1/rollouts/{small}")
    large_sql, large_body = fleet.statements(f"/api/v1/rollouts/{large}")
    assert small_sql == large_sql, (small_sql, large_sql)

    # The bulk read still judges each gateway on its own report.
    statuses = [g["status"] for g in large_body["gateways"].values()]
    assert len(statuses) == 50
    assert statuses.count("installed") == 10
    assert statuses.count("pending") == 40
    assert large_body["gateways"]["gw-006"]["active_version"] == "1.1"
    assert large_body["gateways"]["gw-008"]["gates"][0] == {
        "gate": "min_inferences", "measured": 100, "limit": 1, "ok": True, "now": None, "before": None, "note": None,
    }  # fmt: skip
    assert large_body["gateways"]["gw-005"]["reported_at"] is None  # never reported
    small_statuses = [g["status"] for g in small_body["gateways"].values()]
    assert small_statuses == ["installed", "pending", "installed", "pending", "installed"]


def test_rollout_list_counts_progress_with_a_bounded_number_of_queries(fleet: Fleet) -> None:
    small = fleet.start(SMALL)
    before_sql, _ = fleet.statements("/api/v1/rollouts")
    large = fleet.start(LARGE)
    revisions = {s.gateway_id: s.revision for s in fleet.publisher.published}
    fleet.report({gw: revisions[gw] for gw in FLEET[:25:2]}, "1.1")
    after_sql, listed = fleet.statements("/api/v1/rollouts")
    assert after_sql == before_sql, (before_sql, after_sql)
    progress = {r["id"]: r["progress"] for r in listed}
    unaborted = {"sent_back": None, "never_left": None, "left_as_is": None, "outcome": None}
    assert progress[large] == {"planned": 50, "started": 50, "installed": 10, "bad": 0, **unaborted}
    assert progress[small] == {"planned": 5, "started": 5, "installed": 3, "bad": 0, **unaborted}
