"""Shared fixtures: real services, per-test isolation, and failing on background exceptions.

The platform's users run a real broker and a real database, so tests do too. A service that
cannot be reached fails the test (never skips it): a green run must mean the code was exercised.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from protocol.topics import TopicSpace
from tests.support import avx2

# No per-example deadline: on a loaded 2-core CI machine one slow example is not a bug, and
# speed is measured in bench/, never asserted in tests. print_blob names the failing example.
settings.register_profile("factory", deadline=None, print_blob=True)
settings.load_profile("factory")

MOSQUITTO = ("127.0.0.1", 1883)
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--dburl",
        default=os.environ.get("FACTORY_TEST_DBURL", "postgresql"),
        help="'postgresql' (a fresh database per test on 127.0.0.1:5432), 'sqlite', or a full URL",
    )


# Packages whose session- or package-scoped fixtures are costly (a demo stack, trained models):
# their tests share one xdist worker, so the fixture is built once. Other tests group by module,
# which keeps module-scoped fixtures built once too.
SHARED_PACKAGES = ("tests/browser", "tests/domain_models/notes", "tests/domain_models/parcels")
# Modules of a few long tests without shared fixtures: each test its own group, so the two workers
# share them (the conformance run per role, the scenario per stack).
PER_TEST_MODULES = ("tests/cloud/api/test_openapi_conformance.py", "tests/e2e/test_drift_to_teach.py")


def xdist_group(nodeid: str) -> str:
    """The unit of work a test is scheduled in: its module, its shared package, or itself."""
    module = nodeid.split("::", 1)[0]
    if module in PER_TEST_MODULES:
        return nodeid
    return next((p for p in SHARED_PACKAGES if module.startswith(p + "/")), module)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``-n N --dist loadgroup`` (``make test``), schedule by :func:`xdist_group`.

    A scheduler of our own, not xdist_group markers: xdist turns those into a nodeid suffix,
    which pytest 9 no longer lets it set, so every test was scheduled alone and a module's
    fixtures were built once on each worker (measured: the parcels retrain twice, 2 x 94 s).
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return GroupScheduling(config, log)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Under xdist every worker collects every test, so an early start would run once per worker
    # while one test uses it: the test starts its own run instead.
    if "PYTEST_XDIST_WORKER" not in os.environ:
        avx2.start_early(session.items)


def pytest_sessionfinish(session: pytest.Session) -> None:
    avx2.stop_early()


def require_tcp(host: str, port: int, what: str) -> None:
    """Fail loudly when a service the test needs is down."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        pytest.fail(f"{what} at {host}:{port} is not reachable ({exc}); .ci/run starts it", pytrace=False)


@pytest.fixture
def mosquitto() -> tuple[str, int]:
    """The machine's real Mosquitto broker."""
    require_tcp(*MOSQUITTO, "Mosquitto")
    return MOSQUITTO


@pytest.fixture
def topic_space() -> TopicSpace:
    """A topic namespace of this test's own, so retained messages never leak between tests."""
    return TopicSpace(f"test-{uuid.uuid4().hex[:10]}/factory/v1")


def _fresh_postgres_db() -> Iterator[str]:
    import sqlalchemy as sa

    require_tcp("127.0.0.1", 5432, "PostgreSQL")
    name = f"fe_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for this test, picked by ``--dburl``."""
    choice: str = request.config.getoption("--dburl")
    if choice == "sqlite":
        yield f"sqlite:///{tmp_path / 'cloud.db'}"
    elif choice == "postgresql":
        yield from _fresh_postgres_db()
    else:
        yield choice


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database, whatever ``--dburl`` says (for tests about PostgreSQL itself)."""
    yield from _fresh_postgres_db()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cloud.db'}"


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_logged_exceptions(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test whose code (often a background thread or callback) logged an exception.

    A test that provokes one on purpose marks itself ``@pytest.mark.allow_logged_exceptions``.
    """
    collector = _ErrorCollector()
    root = logging.getLogger()
    # Some libraries reconfigure logging globally (Celery's test worker sets the root level to
    # ERROR); restore it so a later test's log assertions do not depend on test order.
    saved_level = root.level
    root.addHandler(collector)
    try:
        yield
    finally:
        root.removeHandler(collector)
        root.setLevel(saved_level)
    if collector.records and request.node.get_closest_marker("allow_logged_exceptions") is None:
        first = collector.records[0]
        pytest.fail(
            f"{len(collector.records)} exception(s) logged during the test; first from "
            f"{first.name}: {first.getMessage()}",
            pytrace=False,
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_logged_exceptions: the test provokes logged exceptions")
