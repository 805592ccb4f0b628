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
from tests.support.messages import T0, batch, inbound, item, new_stream, state, telemetry

STREAM = new_stream()


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
