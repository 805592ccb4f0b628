"""The alert and defect endpoints: roles on each, acknowledgement with who/when, audit entries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.rules import evaluate_all
from cloud.db import make_engine, make_sessionmaker
from cloud.db.models import AuditEntry
from cloud.ingest.service import ingest_messages
from protocol.topics import Channel, TopicSpace
from tests.support.messages import backlog_telemetry, inbound, state
from tests.support.production import assert_role_gates, production_api
from tests.support.testclient import TestClient
from tests.support.tokens import bearer

RID = uuid.uuid4()
# Every new endpoint and the least role that may call it.
ENDPOINTS = [
    ("GET", f"/api/v1/results/{RID}/thumbnail", "viewer"),
    ("GET", "/api/v1/lines/line-1/defects", "viewer"),
    ("GET", "/api/v1/alerts?state=all", "viewer"),
    ("GET", "/api/v1/alert-rules", "viewer"),
    ("POST", "/api/v1/alerts/999/ack", "operator"),
    ("POST", "/api/v1/alert-rules", "admin"),
    ("PATCH", "/api/v1/alert-rules/999", "admin"),
    ("DELETE", "/api/v1/alert-rules/999", "admin"),
]
RULE = {"line": "line-1", "kind": "outbox_backlog", "threshold": 100}


@pytest.fixture
def production(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with production_api(db_url, tmp_path) as running:
        yield running


def test_each_endpoint_refuses_no_token_401_and_too_little_role_403(
    production: tuple[TestClient, dict[str, str]],
) -> None:
    def body(method: str, path: str) -> object:
        return {"POST": RULE, "PATCH": {"threshold": 5}}.get(method) if "rules" in path else None

    assert_role_gates(*production, ENDPOINTS, body)


def test_admin_manages_rules_operator_acknowledges_and_everything_is_audited(
    production: tuple[TestClient, dict[str, str]], db_url: str, topic_space: TopicSpace
) -> None:
    client, tokens = production
    admin, operator, viewer = (bearer(tokens[r]) for r in ("admin", "operator", "viewer"))
    created = client.post("/api/v1/alert-rules", json=RULE, headers=admin)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert (rule["kind"], rule["threshold"], rule["created_by"]) == (
        "outbox_backlog",
        100,
        "token:test-admin",
    )
    bad = client.post("/api/v1/alert-rules", json={**RULE, "kind": "defect_rate"}, headers=admin)
    assert bad.status_code == 422
    assert "window" in bad.text
    assert [r["id"] for r in client.get("/api/v1/alert-rules", headers=viewer).json()] == [rule["id"]]

    engine = make_engine(db_url)
    try:
        _alert_flow(client, make_sessionmaker(engine), topic_space, rule, (admin, operator, viewer))
    finally:
        engine.dispose()


def _alert_flow(
    client: TestClient,
    sessions: sessionmaker[Session],
    topics: TopicSpace,
    rule: dict[str, Any],
    headers: tuple[dict[str, str], ...],
) -> None:
    admin, operator, viewer = headers
    backlog = backlog_telemetry("gw-a", 400, datetime.now(UTC))
    ingest_messages(
        sessions,
        [
            inbound(topics, "gw-a", Channel.STATE, state("gw-a", True, 1)),
            inbound(topics, "gw-a", Channel.TELEMETRY, backlog),
        ],
        topics,
    )
    evaluate_all(sessions)
    [alert] = client.get("/api/v1/alerts?state=open", headers=viewer).json()
    assert (alert["rule_id"], alert["gateway_id"], alert["kind"], alert["value"]) == (
        rule["id"],
        "gw-a",
        "outbox_backlog",
        400.0,
    )
    assert alert["acknowledged_by"] is None
    before = datetime.now(UTC)
    acked = client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=operator)
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "token:test-operator"
    at = datetime.fromisoformat(acked.json()["acknowledged_at"])
    assert before <= at <= datetime.now(UTC)
    again = client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=admin)
    assert again.json()["acknowledged_by"] == "token:test-operator", "the first acknowledgement stands"
    assert client.post("/api/v1/alerts/424242/ack", headers=operator).status_code == 404

    assert client.delete(f"/api/v1/alert-rules/{rule['id']}", headers=admin).status_code == 204
    assert client.delete(f"/api/v1/alert-rules/{rule['id']}", headers=admin).status_code == 404
    assert client.get("/api/v1/alerts?state=open", headers=viewer).json() == []
    [closed] = client.get("/api/v1/alerts?state=all", headers=viewer).json()
    assert closed["closed_at"] is not None
    assert client.get("/api/v1/alerts?state=closed", headers=viewer).status_code == 422

    with sessions() as session:
        audit = [
            (a.actor, a.action, a.target) for a in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]
    assert ("token:test-admin", "alert_rule.create", str(rule["id"])) in audit
    assert ("token:test-operator", "alert.ack", str(alert["id"])) in audit
    assert ("token:test-admin", "alert_rule.delete", str(rule["id"])) in audit
    assert sum(a[1] == "alert.ack" for a in audit) == 1


def test_admin_edits_a_rule_a_bad_edit_names_its_field_and_disabling_closes_its_alerts(
    production: tuple[TestClient, dict[str, str]], db_url: str, topic_space: TopicSpace
) -> None:
    client, tokens = production
    admin, operator = bearer(tokens["admin"]), bearer(tokens["operator"])
    rule = client.post("/api/v1/alert-rules", json=RULE, headers=admin).json()
    assert rule["enabled"] is True
    path = f"/api/v1/alert-rules/{rule['id']}"
    assert client.patch(path, json={"threshold": 50}, headers=operator).status_code == 403
    edited = client.patch(path, json={"threshold": 50}, headers=admin)
    assert edited.status_code == 200, edited.text
    assert (edited.json()["threshold"], edited.json()["kind"], edited.json()["line"]) == (
        50,
        "outbox_backlog",
        "line-1",
    )
    # A window on a backlog rule, a negative threshold, an unknown field: each named, nothing stored.
    for body, field in (({"window_s": 60}, "window_s"), ({"threshold": -1}, "threshold"),
                        ({"line": "line-2"}, "line")):  # fmt: skip
        bad = client.patch(path, json=body, headers=admin)
        assert bad.status_code == 422, (body, bad.text)
        assert field in bad.text, (body, bad.text)
    assert client.get("/api/v1/alert-rules", headers=admin).json()[0]["threshold"] == 50
    assert client.patch("/api/v1/alert-rules/424242", json={"threshold": 1}, headers=admin).status_code == 404

    engine = make_engine(db_url)
    try:
        sessions = make_sessionmaker(engine)
        backlog = backlog_telemetry("gw-a", 400, datetime.now(UTC))
        messages = [
            inbound(topic_space, "gw-a", Channel.STATE, state("gw-a", True, 1)),
            inbound(topic_space, "gw-a", Channel.TELEMETRY, backlog),
        ]
        ingest_messages(sessions, messages, topic_space)
        assert evaluate_all(sessions).opened == 1
        off = client.patch(path, json={"enabled": False}, headers=admin)
        assert off.status_code == 200, off.text
        assert off.json()["enabled"] is False
        assert client.get("/api/v1/alerts?state=open", headers=admin).json() == []
        # A disabled rule is not evaluated: the backlog still holds, yet nothing opens again.
        assert evaluate_all(sessions).as_dict() == {"rules": 0, "opened": 0, "closed": 0}
        assert client.patch(path, json={"enabled": True}, headers=admin).status_code == 200
        assert evaluate_all(sessions).opened == 1
        with sessions() as session:
            updates = [
                (a.actor, a.details)
                for a in session.scalars(select(AuditEntry).where(AuditEntry.action == "alert_rule.update"))
            ]
    finally:
        engine.dispose()
    assert updates == [
        ("token:test-admin", {"threshold": 50.0}),
        ("token:test-admin", {"enabled": False}),
        ("token:test-admin", {"enabled": True}),
    ]
