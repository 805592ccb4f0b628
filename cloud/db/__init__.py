"""Database: typed ORM models, engine construction and Alembic migrations."""

# Captures and datasets live in their own module on the same metadata; imported here so every
# user of the models (Alembic, the migration test) sees their tables.
from cloud.db import dataset_models as dataset_models
from cloud.db.engine import make_engine, make_sessionmaker, wait_for_db
from cloud.db.migrate import migrate

__all__ = ["make_engine", "make_sessionmaker", "migrate", "wait_for_db"]
