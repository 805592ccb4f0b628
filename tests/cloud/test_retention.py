"""Retention deletes only rows older than its number of days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.db.models import DeadLetter, Result
from cloud.ingest.service import ingest_messages
from cloud.retention import purge_older_than
from protocol.topics import Channel, TopicSpace
from tests.support.messages import batch, inbound, item, new_stream


def test_retention_deletes_only_old_rows(db_url: str, topic_space: TopicSpace) -> None:
    migrate(db_url)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=40), now - timedelta(days=2)
    stream = new_stream()
    ingest_messages(
        sessions,
        [
            inbound(
                topic_space, "gw", Channel.RESULTS, batch("gw", stream, [item(1, at=old), item(2, at=recent)])
            ),
            inbound(topic_space, "gw", Channel.RESULTS, b"junk"),
        ],
        topic_space,
    )
    with sessions.begin() as session:
        session.execute(sa.update(DeadLetter).values(received_at=old))
    outcome = purge_older_than(sessions, 30, now=now)
    assert (outcome.results, outcome.dead_letters, outcome.events) == (1, 1, 0)
    with sessions() as session:
        assert session.scalars(sa.select(Result.seq)).all() == [2]
    with pytest.raises(ValueError, match="days must be >= 1"):
        purge_older_than(sessions, 0)
    engine.dispose()
