"""Apply Alembic migrations programmatically (no alembic.ini lookup from the working directory)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from cloud.db.engine import make_engine, wait_for_db

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(db_url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and ``db_url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser treats '%' as interpolation; URL-encoded passwords contain it.
    config.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    return config


def migrate(db_url: str, revision: str = "head", wait_s: float = 0.0, engine: Engine | None = None) -> None:
    """Wait up to ``wait_s`` for the database, then upgrade it to ``revision``."""
    own = engine is None
    eng = engine if engine is not None else make_engine(db_url)
    try:
        if wait_s > 0:
            wait_for_db(eng, wait_s)
        config = alembic_config(db_url)
        with eng.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
        log.info("database %s migrated to %s", eng.url.render_as_string(hide_password=True), revision)
    finally:
        if own:
            eng.dispose()
