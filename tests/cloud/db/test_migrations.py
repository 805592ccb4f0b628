"""Migrations against the ORM: they match the models, and go down and up again."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cloud.db import make_engine, migrate
from cloud.db.migrate import alembic_config
from cloud.db.models import Base


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
