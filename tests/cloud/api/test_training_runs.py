"""Training runs through the API (cloud/api/routers/training.py): operators and admins teach, viewers
read; a queued run goes to the teach queue, a dataset that cannot teach answers with a failed run
saying why, a broker that refuses the task fails the run, and the model's version names its run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker
from cloud.training.teach import Stores
from tests.support.production import assert_role_gates, production_settings
from tests.support.releases import RecordingPublisher
from tests.support.teach import RecordingQueue, simulated_dataset
from tests.support.testclient import TestClient
from tests.support.tokens import bearer, mint_tokens

DATASET = "cap-0000000000b1"


@dataclass
class Api:
    client: TestClient
    tokens: dict[str, str]
    queue: RecordingQueue
    sessions: sessionmaker[Session]
    settings: CloudSettings

    def call(self, method: str, path: str, who: str, status: int, **kwargs: object) -> dict[str, object]:
        answer = self.client.request(method, f"/api/v1{path}", headers=bearer(self.tokens[who]), **kwargs)  # type: ignore[arg-type]
        assert answer.status_code == status, answer.text
        body: dict[str, object] = answer.json()
        return body


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    tokens = mint_tokens(db_url)
    settings = production_settings(db_url, tmp_path)
    queue = RecordingQueue()
    engine = make_engine(db_url)
    with TestClient(create_app(settings, RecordingPublisher(), teach_queue=queue)) as client:
        yield Api(client, tokens, queue, make_sessionmaker(engine), settings)
    engine.dispose()


def test_operators_and_admins_teach_viewers_read(api: Api) -> None:
    simulated_dataset(api.sessions, Stores.of(api.settings).captures, DATASET, good=14)
    endpoints = [
        ("POST", "/api/v1/training-runs", "operator"),
        ("GET", "/api/v1/training-runs", "viewer"),
        ("GET", "/api/v1/training-runs/1", "viewer"),
        ("GET", "/api/v1/training-runs/1/files/MODEL_CARD.md", "viewer"),
    ]
    assert_role_gates(
        api.client, api.tokens, endpoints, lambda m, _p: {"dataset_id": DATASET} if m == "POST" else None
    )
    run = api.call("GET", "/training-runs/1", "viewer", 200)
    assert (run["status"], run["dataset_id"], run["requested_by"]) == (
        "queued",
        DATASET,
        "token:test-operator",
    )
    assert (run["model_name"], run["model_version"]) == ("defect-patchcore", "1.0.0")
    assert api.queue.runs == [1]
    assert api.call("POST", "/training-runs", "admin", 409, json={"dataset_id": DATASET})["detail"] == (
        f"training run 1 of dataset {DATASET} is still queued or running"
    )
    audit = api.call("GET", "/audit", "admin", 200, params={"action": "training.start"})
    assert [(e["actor"], e["target"]) for e in audit] == [("token:test-operator", "1")]  # type: ignore[index,union-attr]


def test_a_dataset_that_cannot_teach_answers_with_a_failed_run_saying_why(api: Api) -> None:
    run = api.call("POST", "/training-runs", "operator", 201, json={"dataset_id": "cap-ffffffffffff"})
    assert (run["status"], run["error"]) == ("failed", "no capture or dataset cap-ffffffffffff")
    assert api.queue.runs == []
    listed = api.call("GET", "/training-runs", "viewer", 200, params={"status": "failed"})
    assert [r["id"] for r in listed["items"]] == [run["id"]]  # type: ignore[index,union-attr]
    assert api.call("GET", "/training-runs/999", "viewer", 404)["detail"] == "training run 999 not found"
    bad = api.call("POST", "/training-runs", "operator", 422, json={"dataset_id": DATASET, "frr": 1.5})
    assert bad["detail"]


def test_a_broker_that_refuses_the_task_fails_the_run(api: Api) -> None:
    simulated_dataset(api.sessions, Stores.of(api.settings).captures, DATASET, good=14)
    api.queue.down = True
    run = api.call("POST", "/training-runs", "operator", 201, json={"dataset_id": DATASET, "seed": 4})
    assert run["status"] == "failed"
    assert run["error"] == "the task queue did not take the run (broker unreachable (test)); start it again"
    assert (run["seed"], run["parameters"]["seed"]) == (4, 4)  # type: ignore[index]
