"""The documented API is the real one: schemathesis runs every phase and every check over the
OpenAPI document, once per role, against the API in-process (production profile: every read
needs a token) on a freshly seeded PostgreSQL database.

The budget is fixed (``tests/support/conformance.py``: seed, examples per operation, stateful
steps), so a run is repeatable; a failure prints each finding with a curl line that repeats it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloud.api import create_app
from cloud.auth.service import Role, create_token
from cloud.db import make_engine, make_sessionmaker
from protocol.topics import TopicSpace
from tests.support.captures import RecordingOrders
from tests.support.conformance import run_conformance
from tests.support.database import seed, seed_notes_and_events
from tests.support.production import production_settings
from tests.support.releases import RecordingPublisher

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def seeded_db(db_url: str, topic_space: TopicSpace) -> str:
    """Two lines' results, notes and gateway events, so reads find something to return."""
    seed(db_url, topic_space)
    seed_notes_and_events(db_url, topic_space)
    return db_url


@pytest.fixture
def token_of(seeded_db: str) -> Iterator[Callable[[Role], str]]:
    """Mints a new token of a role on the seeded database."""
    engine = make_engine(seeded_db)
    sessions = make_sessionmaker(engine)

    def mint(role: Role) -> str:
        with sessions.begin() as session:
            return create_token(session, f"conformance-{role.name}", role)[1]

    yield mint
    engine.dispose()


@pytest.mark.timeout(900)
# Hypothesis warns when it shows a huge generated value; that is the fuzzer working, not a fault.
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@pytest.mark.parametrize("role", [Role.viewer, Role.operator, Role.admin], ids=lambda role: role.name)
def test_every_response_matches_the_documented_api(
    role: Role, seeded_db: str, token_of: Callable[[Role], str], tmp_path: Path
) -> None:
    settings = production_settings(seeded_db, tmp_path).model_copy(update={"api_docs": True})
    app = create_app(settings, RecordingPublisher(), RecordingOrders())

    run = run_conformance(app, lambda: token_of(role))

    assert run.cases > 0
    assert not run.findings, (
        f"{len(run.findings)} finding(s) in {run.cases} cases as {role.name}:\n{run.report()}"
    )
