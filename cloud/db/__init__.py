"""Database: typed ORM models, engine construction and Alembic migrations."""

# Captures and datasets, and training runs, live in modules of their own on the same metadata;
# imported here so every user of the models (Alembic, the migration test) sees their tables.
from cloud.db import dataset_models as dataset_models
from cloud.db import training_models as training_models
from cloud.db.engine import make_engine, make_sessionmaker, wait_for_db
from cloud.db.migrate import migrate

__all__ = ["make_engine", "make_sessionmaker", "migrate", "wait_for_db"]
