"""Migrations against the ORM, time zones, and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.db.migrate import alembic_config
from cloud.db.models import Base, DeadLetter, Result
from cloud.ingest.service import ingest_messages
from cloud.retention import purge_older_than
from protocol.topics import Channel, TopicSpace
from tests.cloud.helpers import batch, inbound, item, new_stream


def _diff(db_url: str) -> list[object]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_migrations_match_models_on_postgresql(pg_url: str) -> None:
    migrate(pg_url)
    assert _diff(pg_url) == []


def test_migrations_downgrade_and_upgrade_again(db_url: str) -> None:
    migrate(db_url)
    command.downgrade(alembic_config(db_url), "base")
    engine = make_engine(db_url)
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    migrate(db_url)
    assert _diff(db_url) == []


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
