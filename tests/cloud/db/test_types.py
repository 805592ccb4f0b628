"""Column types: datetimes come back aware in UTC, and a naive one is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.db.models import Result
from cloud.ingest.service import ingest_messages
from protocol.topics import Channel, TopicSpace
from tests.support.messages import batch, inbound, item, new_stream


def test_datetimes_come_back_aware_utc_and_naive_is_refused(db_url: str, topic_space: TopicSpace) -> None:
    migrate(db_url)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    plus2 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Berlin")
    )
    ingest_messages(
        sessions,
        [inbound(topic_space, "gw", Channel.RESULTS, batch("gw", new_stream(), [item(1, at=plus2)]))],
        topic_space,
    )
    with sessions() as session:
        stored = session.scalars(sa.select(Result.captured_at)).one()
        assert stored == plus2
        assert stored.utcoffset() == timedelta(0)
        with pytest.raises(sa.exc.StatementError, match="naive datetime"):
            session.scalars(sa.select(Result).where(Result.captured_at < datetime(2026, 1, 1))).all()  # noqa: DTZ001
    engine.dispose()
