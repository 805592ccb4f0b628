"""``GET /gateways?reported=true``: every gateway's reported OTA state in one read, for any fleet size."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cloud.api import create_app
from cloud.auth.service import Role, create_user
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.service import ingest_messages
from protocol.messages import ModelRef
from protocol.ota import ReportedState, SlotReport
from protocol.topics import Channel, TopicSpace
from tests.support.console import ORIGIN, PASSWORD
from tests.support.database import count_statements
from tests.support.messages import SHA, inbound, state, telemetry
from tests.support.production import production_api
from tests.support.releases import RecordingPublisher
from tests.support.testclient import TestClient
from tests.support.tokens import bearer, mint_tokens

FLEET = [f"gw-{i:03d}" for i in range(60)]


class Fleet:
    """The API over a database that gateways join, report to and are counted against."""

    def __init__(self, client: TestClient, settings: CloudSettings, topics: TopicSpace) -> None:
        self.client, self.settings, self.topics = client, settings, topics

    def join(self, gateways: list[str], reporting: list[str], version: str = "1.1.0") -> None:
        """Births and telemetry of ``gateways``; those in ``reporting`` also report their 'main' slot."""
        slot = SlotReport(
            active=ModelRef(name="defect-cnn", version=version, sha256=SHA),
            phase="failed",
            target=ModelRef(name="defect-cnn", version="1.2.0", sha256=SHA),
            error="signature: key 2b1d889d is not trusted",
        )
        messages = [inbound(self.topics, gw, Channel.STATE, state(gw, True, 1)) for gw in gateways]
        messages += [inbound(self.topics, gw, Channel.TELEMETRY, telemetry(gw)) for gw in gateways]
        messages += [
            inbound(
                self.topics,
                gw,
                Channel.REPORTED,
                ReportedState(
                    gateway_id=gw, desired_revision=3, slots={"main": slot}, timestamp=datetime.now(UTC)
                ),
            )
            for gw in reporting
        ]
        engine = make_engine(self.settings.db_url)
        try:
            ingest_messages(make_sessionmaker(engine), messages, self.topics)
        finally:
            engine.dispose()

    def statements(self, path: str) -> tuple[int, Any]:
        """How many SQL statements answering GET ``path`` ran, and the answer."""
        return count_statements(self.client, path)


@pytest.fixture
def fleet(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Fleet]:
    settings = CloudSettings(db_url=db_url, artifact_dir=str(tmp_path / "artifacts"))  # demo: open reads
    mint_tokens(db_url)  # migrates
    with TestClient(create_app(settings, RecordingPublisher())) as client:
        yield Fleet(client, settings, topic_space)


def test_reported_states_of_5_and_60_gateways_cost_the_same_sql(fleet: Fleet) -> None:
    fleet.join(FLEET[:5], reporting=FLEET[:5:2])
    small_sql, small = fleet.statements("/api/v1/gateways?reported=true")
    fleet.join(FLEET[5:], reporting=FLEET[5::2])
    large_sql, large = fleet.statements("/api/v1/gateways?reported=true")
    assert small_sql == large_sql, (small_sql, large_sql)
    assert [g["id"] for g in small] == FLEET[:5]
    assert [g["id"] for g in large] == FLEET

    # Each gateway gets its own report; one that never reported says so with null.
    by_id = {g["id"]: g for g in large}
    assert by_id["gw-001"]["reported"] is None
    reported = by_id["gw-007"]["reported"]
    assert reported["desired_revision"] == 3
    assert reported["slots"]["main"]["active"]["version"] == "1.1.0"
    assert reported["slots"]["main"]["error"] == "signature: key 2b1d889d is not trusted"
    assert datetime.fromisoformat(reported["timestamp"]).tzinfo is not None
    assert sum(1 for g in large if g["reported"] is not None) == 3 + 28  # gw-000, -002, -004; odd from gw-005
    # The rest of each gateway is what the plain list gives.
    assert by_id["gw-007"]["online"] is True
    assert by_id["gw-007"]["telemetry"]["cpu_percent"] == 12.0


def test_the_plain_list_is_unchanged_and_bad_flags_are_named(fleet: Fleet) -> None:
    fleet.join(FLEET[:3], reporting=FLEET[:3])
    plain = fleet.client.get("/api/v1/gateways").json()
    assert [g["id"] for g in plain] == FLEET[:3]
    assert all("reported" not in g for g in plain)  # not asked: absent, not "never reported"
    assert all("reported" not in g for g in fleet.client.get("/api/v1/gateways?reported=false").json())

    bad = fleet.client.get("/api/v1/gateways?reported=maybe")
    assert bad.status_code == 422
    (error,) = bad.json()["detail"]
    assert error["loc"] == ["query", "reported"]
    assert "boolean" in error["msg"]


def test_openapi_describes_the_reported_query(fleet: Fleet) -> None:
    spec = fleet.client.get("/openapi.json").json()
    operation = spec["paths"]["/api/v1/gateways"]["get"]
    (param,) = [p for p in operation["parameters"] if p["name"] == "reported"]
    assert param["in"] == "query"
    assert param["schema"]["default"] is False
    assert "one query" in param["description"]
    listed = spec["components"]["schemas"]["GatewayListed"]["properties"]["reported"]
    assert "reported OTA state" in listed["description"]


def test_the_console_gateways_page_costs_the_same_sql_for_5_and_60_gateways(fleet: Fleet) -> None:
    """The page reads the fleet through the bulk read, not one ``/ota`` call per gateway."""
    engine = make_engine(fleet.settings.db_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            create_user(session, "vera", PASSWORD, Role.viewer)
    finally:
        engine.dispose()
    answer = fleet.client.post(
        "/login", data={"username": "vera", "password": PASSWORD}, headers=ORIGIN, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    fleet.join(FLEET[:5], reporting=FLEET[:5])
    small_sql, small = fleet.statements("/gateways")
    fleet.join(FLEET[5:], reporting=FLEET[5:])
    large_sql, large = fleet.statements("/gateways")
    assert small_sql == large_sql, (small_sql, large_sql)
    said = "main: running 1.1.0 · last update 1.2.0 refused: signature: key 2b1d889d is not trusted"
    assert small.count(f'<td class="slot-state">{said}</td>') == 5
    assert large.count(f'<td class="slot-state">{said}</td>') == 60


def test_production_needs_a_viewer_token_for_the_bulk_read(db_url: str, tmp_path: Path) -> None:
    with production_api(db_url, tmp_path) as (client, tokens):
        path = "/api/v1/gateways?reported=true"
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
        for role in ("viewer", "operator", "admin"):
            answer = client.get(path, headers=bearer(tokens[role]))
            assert answer.status_code == 200, (role, answer.text)
            assert answer.json() == []
