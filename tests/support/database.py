"""A database seeded through the ingest service for the API tests, and counting the SQL statements a
request runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.ingest.service import ingest_messages
from protocol.topics import Channel, TopicSpace
from tests.support.messages import (
    T0,
    batch,
    gateway_event,
    inbound,
    item,
    new_stream,
    note,
    state,
    telemetry,
)

STREAM = new_stream()
# line-1's maintenance notes, written beside its camera: (seconds after T0, text, category, urgency).
NOTES = (
    (150, "Hydraulic oil leak under press 3\nsee photo in C:\\shift\tlog", "hydraulic_pneumatic", "medium"),
    (270, "Guard door interlock bypassed on cell 2", "safety", "high"),
    (390, "Förderband quietscht am Einlauf", "mechanical", "low"),
    (510, "Smoke from control cabinet 2", "electrical", "high"),
)


def seed(db_url: str, topics: TopicSpace) -> None:
    """line-1: gw-a, 10 defect results one minute apart (seq 3, 6, 9 defective); line-2: 5 others."""
    migrate(db_url)
    engine = make_engine(db_url)
    line1 = [item(s, at=T0 + timedelta(minutes=s), defect=s % 3 == 0) for s in range(1, 11)]
    line2 = [
        item(s, line="line-2", at=T0 + timedelta(minutes=s), model="parcel-cls", classification=True)
        for s in range(1, 6)
    ]
    ingest_messages(
        make_sessionmaker(engine),
        [
            inbound(topics, "gw-a", Channel.STATE, state("gw-a", True, 1)),
            inbound(topics, "gw-a", Channel.TELEMETRY, telemetry("gw-a", inferences=10)),
            inbound(topics, "gw-a", Channel.RESULTS, batch("gw-a", STREAM, line1)),
            inbound(topics, "gw-b", Channel.STATE, state("gw-b", False, 4, line="line-2")),
            inbound(topics, "gw-b", Channel.RESULTS, batch("gw-b", STREAM, line2)),
            inbound(topics, "gw-b", Channel.RESULTS, b"garbage"),
        ],
        topics,
    )
    engine.dispose()


def seed_notes_and_events(db_url: str, topics: TopicSpace) -> None:
    """On top of :func:`seed`: line-1's :data:`NOTES` from gw-a's notes source, and three gateway
    events (gw-a: info ``ota`` at T0 + 1 min, warning ``outbox_shed`` at + 2 min; gw-b: error
    ``ota`` at + 3 min)."""
    notes = [
        note(s, text, at=T0 + timedelta(seconds=at), category=category, urgency=urgency)
        for s, (at, text, category, urgency) in enumerate(NOTES, start=1)
    ]
    events = [
        ("gw-a", gateway_event("gw-a", T0 + timedelta(minutes=1), "info", "ota", "downloading")),
        ("gw-a", gateway_event("gw-a", T0 + timedelta(minutes=2), "warning", "outbox_shed", "shed 5")),
        ("gw-b", gateway_event("gw-b", T0 + timedelta(minutes=3), "error", "ota", "smoke test failed")),
    ]
    engine = make_engine(db_url)
    ingest_messages(
        make_sessionmaker(engine),
        [
            inbound(topics, "gw-a", Channel.RESULTS, batch("gw-a", new_stream(), notes)),
            *(inbound(topics, gw, Channel.EVENTS, event) for gw, event in events),
        ],
        topics,
    )
    engine.dispose()


def count_statements(client: TestClient, path: str) -> tuple[int, Any]:
    """How many SQL statements answering GET ``path`` ran (API and console alike), and the answer."""
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])  # the statement text

    event.listen(engine, "before_cursor_execute", count)
    try:
        answer = client.get(path)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert answer.status_code == 200, answer.text
    is_json = answer.headers["content-type"].startswith("application/json")
    return len(seen), answer.json() if is_json else answer.text
