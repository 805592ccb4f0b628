"""Database: typed ORM models, engine construction and Alembic migrations."""

from cloud.db.engine import make_engine, make_sessionmaker, wait_for_db
from cloud.db.migrate import migrate

__all__ = ["make_engine", "make_sessionmaker", "migrate", "wait_for_db"]
