"""Gateway events over the API, per gateway and fleet-wide: newest first, paged, filtered, role-gated."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import pytest

from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.service import ingest_messages
from protocol.messages import EventBatch
from protocol.topics import Channel, TopicSpace
from tests.support.messages import gateway_event, inbound, state
from tests.support.production import production_api
from tests.support.testclient import TestClient
from tests.support.tokens import bearer

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def _event(
    gateway_id: str, n: int, kind: str = "ota", level: Literal["info", "warning", "error"] = "info"
) -> EventBatch:
    return gateway_event(gateway_id, T0 + timedelta(seconds=n), level, kind, f"{kind} step {n}", {"n": n})


def _seed(db_url: str, topics: TopicSpace) -> None:
    """gw-a: 5 OTA events (one a warning) and an outbox_shed error; gw-b: one event of its own."""
    engine = make_engine(db_url)
    try:
        events = [_event("gw-a", n, level="warning" if n == 3 else "info") for n in range(1, 6)]
        events.append(_event("gw-a", 6, kind="outbox_shed", level="error"))
        messages = [inbound(topics, "gw-a", Channel.STATE, state("gw-a", True, 1))]
        messages += [inbound(topics, "gw-a", Channel.EVENTS, e) for e in events]
        messages += [
            inbound(topics, "gw-b", Channel.STATE, state("gw-b", True, 1)),
            inbound(topics, "gw-b", Channel.EVENTS, _event("gw-b", 9)),
        ]
        ingest_messages(make_sessionmaker(engine), messages, topics)
    finally:
        engine.dispose()


@pytest.fixture
def production(
    db_url: str, tmp_path: Path, topic_space: TopicSpace
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with production_api(db_url, tmp_path) as running:
        _seed(db_url, topic_space)
        yield running


def test_events_need_a_viewer_token_in_production(production: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = production
    path = "/api/v1/gateways/gw-a/events"
    assert client.get(path).status_code == 401
    assert client.get(path, headers=bearer("fe_forged")).status_code == 401
    for role in ("viewer", "operator", "admin"):
        answer = client.get(path, headers=bearer(tokens[role]))
        assert answer.status_code == 200, (role, answer.text)


def test_events_are_newest_first_paged_and_filtered(production: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = production
    viewer = bearer(tokens["viewer"])
    page = client.get("/api/v1/gateways/gw-a/events?limit=4", headers=viewer).json()
    assert [e["message"] for e in page["items"]] == [
        "outbox_shed step 6",
        "ota step 5",
        "ota step 4",
        "ota step 3",
    ]
    assert (page["limit"], page["offset"], page["next_offset"]) == (4, 0, 4)
    assert page["items"][0]["details"] == {"n": 6}
    assert page["items"][0]["gateway_id"] == "gw-a"
    rest = client.get("/api/v1/gateways/gw-a/events?limit=4&offset=4", headers=viewer).json()
    assert [e["message"] for e in rest["items"]] == ["ota step 2", "ota step 1"]
    assert rest["next_offset"] is None

    ota = client.get("/api/v1/gateways/gw-a/events?kind=ota", headers=viewer).json()["items"]
    assert len(ota) == 5
    assert {e["kind"] for e in ota} == {"ota"}
    warnings = client.get("/api/v1/gateways/gw-a/events?level=warning", headers=viewer).json()["items"]
    assert [e["message"] for e in warnings] == ["ota step 3"]
    # Another gateway's events never show up under this one.
    other = client.get("/api/v1/gateways/gw-b/events", headers=viewer).json()["items"]
    assert [e["message"] for e in other] == ["ota step 9"]


def test_bad_queries_are_refused_with_the_reason(production: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = production
    viewer = bearer(tokens["viewer"])
    unknown = client.get("/api/v1/gateways/gw-nope/events", headers=viewer)
    assert unknown.status_code == 404
    assert "gw-nope" in unknown.text
    for query, field in (("level=fatal", "level"), ("limit=0", "limit"), ("limit=5000", "limit"),
                         ("offset=-1", "offset")):  # fmt: skip
        answer = client.get(f"/api/v1/gateways/gw-a/events?{query}", headers=viewer)
        assert answer.status_code == 422, query
        assert field in answer.text, query


# --- The whole fleet's events: GET /events ---------------------------------------------------

ALL = [
    "ota step 9",
    "outbox_shed step 6",
    "ota step 5",
    "ota step 4",
    "ota step 3",
    "ota step 2",
    "ota step 1",
]


def _messages(answer: dict[str, Any]) -> list[str]:
    return [e["message"] for e in answer["items"]]


def test_fleet_events_need_a_viewer_token_in_production(
    production: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = production
    assert client.get("/api/v1/events").status_code == 401
    assert client.get("/api/v1/events", headers=bearer("fe_forged")).status_code == 401
    for role in ("viewer", "operator", "admin"):
        answer = client.get("/api/v1/events", headers=bearer(tokens[role]))
        assert answer.status_code == 200, (role, answer.text)
        assert _messages(answer.json()) == ALL


def test_fleet_events_are_filtered_newest_first(production: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = production
    viewer = bearer(tokens["viewer"])

    def get(query: str) -> list[str]:
        answer = client.get(f"/api/v1/events?{query}", headers=viewer)
        assert answer.status_code == 200, (query, answer.text)
        return _messages(answer.json())

    assert get("gateway=gw-b") == ["ota step 9"]
    assert get("gateway=gw-a&kind=ota&level=warning") == ["ota step 3"]
    assert get("kind=outbox_shed") == ["outbox_shed step 6"]
    assert get("level=error") == ["outbox_shed step 6"]
    since = quote((T0 + timedelta(seconds=5)).isoformat())
    assert get(f"since={since}") == ALL[:3]  # at or after: step 5 is in
    assert get(f"since={since}&gateway=gw-a") == ALL[1:3]
    assert get("kind=nothing-like-it") == []


def test_fleet_events_page_by_offset_and_by_a_cursor_stable_under_new_events(
    production: tuple[TestClient, dict[str, str]], db_url: str, topic_space: TopicSpace
) -> None:
    client, tokens = production
    viewer = bearer(tokens["viewer"])
    first = client.get("/api/v1/events?limit=3", headers=viewer).json()
    assert _messages(first) == ALL[:3]
    assert (first["limit"], first["offset"], first["next_offset"]) == (3, 0, 3)
    last = client.get("/api/v1/events?limit=3&offset=6", headers=viewer).json()
    assert _messages(last) == ALL[6:]
    assert (last["next_offset"], last["next_cursor"]) == (None, None)

    # Two more events of the same instant (ties are broken by id) and one newer than all:
    # cursor pages go on where they were; the newer one shows only on a fresh first page.
    tied = [_event("gw-b", 4), _event("gw-b", 4, kind="outbox_shed"), _event("gw-a", 30)]
    engine = make_engine(db_url)
    try:
        messages = [inbound(topic_space, e.gateway_id, Channel.EVENTS, e) for e in tied]
        ingest_messages(make_sessionmaker(engine), messages, topic_space)
    finally:
        engine.dispose()
    seen, cursor = _messages(first), first["next_cursor"]
    while cursor is not None:
        page = client.get(f"/api/v1/events?limit=1&cursor={cursor}", headers=viewer).json()
        assert page["next_offset"] is None
        seen += _messages(page)
        cursor = page["next_cursor"]
    assert seen[:3] == ALL[:3]
    # gw-a's step 4 and the two new ones share T0+4s: each comes once, none is skipped.
    assert sorted(seen[3:6]) == ["ota step 4", "ota step 4", "outbox_shed step 4"]
    assert seen[6:] == ALL[4:]
    assert _messages(client.get("/api/v1/events?limit=1", headers=viewer).json()) == ["ota step 30"]


def test_fleet_event_queries_that_make_no_sense_are_refused_with_the_reason(
    production: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = production
    viewer = bearer(tokens["viewer"])
    unknown = client.get("/api/v1/events?gateway=gw-nope", headers=viewer)
    assert unknown.status_code == 404
    assert "gw-nope" in unknown.text
    cursor = client.get("/api/v1/events?limit=1", headers=viewer).json()["next_cursor"]
    for query, said in (("level=fatal", "level"), ("limit=0", "limit"), ("limit=5000", "limit"),
                        ("offset=-1", "offset"), ("since=2026-11-29T08:00:00", "since"),
                        ("since=yesterday", "since"), ("cursor=not-a-cursor", "cursor"),
                        (f"cursor={cursor}&offset=2", "either cursor or offset")):  # fmt: skip
        answer = client.get(f"/api/v1/events?{query}", headers=viewer)
        assert answer.status_code == 422, query
        assert said in answer.text, (query, answer.text)
