"""The Training pages (cloud/console/pages/training.py): the dataset page's "Teach new normal" button
for operators only, the run view in each state (queued and reloading itself, failed with the reason,
succeeded awaiting a signature with the commands that sign and push it), and the runs list."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker
from cloud.db.training_models import TrainingRun
from cloud.training.files import keep_file
from cloud.training.teach import Stores
from protocol.messages import utcnow
from protocol.topics import TopicSpace
from tests.support.console import ORIGIN, login, seed_console
from tests.support.releases import RecordingPublisher
from tests.support.teach import RecordingQueue, simulated_dataset
from tests.support.testclient import TestClient

DATASET = "cap-0000000000c1"


@dataclass
class Pages:
    client: TestClient
    queue: RecordingQueue
    sessions: sessionmaker[Session]
    stores: Stores


@pytest.fixture
def pages(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Pages]:
    settings = CloudSettings(
        db_url=db_url, artifact_dir=str(tmp_path / "artifacts"), topic_root=topic_space.root
    )
    seed_console(settings, topic_space, Ed25519PrivateKey.generate(), tmp_path / "release")
    engine = make_engine(db_url)
    sessions, stores, queue = make_sessionmaker(engine), Stores.of(settings), RecordingQueue()
    simulated_dataset(sessions, stores.captures, DATASET, good=14)
    with TestClient(create_app(settings, RecordingPublisher(), teach_queue=queue)) as client:
        yield Pages(client, queue, sessions, stores)
    engine.dispose()


def test_operators_teach_from_the_dataset_page_and_land_on_the_queued_run(pages: Pages) -> None:
    login(pages.client, "vera")
    assert 'id="teach"' not in pages.client.get(f"/datasets/{DATASET}").text
    refused = pages.client.post(f"/datasets/{DATASET}/teach", headers=ORIGIN, follow_redirects=False)
    assert refused.status_code == 403
    assert pages.queue.runs == []
    login(pages.client, "otto")
    page = pages.client.get(f"/datasets/{DATASET}").text
    assert f'<form method="post" action="/datasets/{DATASET}/teach" id="teach-form">' in page
    answer = pages.client.post(f"/datasets/{DATASET}/teach", headers=ORIGIN, follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/training/1")
    assert pages.queue.runs == [1]
    view = pages.client.get("/training/1").text
    assert 'data-status="queued" data-active="true"' in view
    assert '<script src="/console/static/teach.js" defer></script>' in view
    assert 'defect-patchcore 1.0.0 <span class="muted">(not registered)</span>' in view
    assert pages.client.get("/console/static/teach.js").status_code == 200


def test_a_dataset_that_cannot_teach_shows_its_failed_run_with_the_reason(pages: Pages) -> None:
    login(pages.client, "otto")
    answer = pages.client.post("/datasets/cap-ffffffffffff/teach", headers=ORIGIN, follow_redirects=True)
    assert answer.status_code == 200
    assert (
        '<p class="error" id="run-error" role="alert">no capture or dataset cap-ffffffffffff</p>'
        in answer.text
    )
    assert 'data-active="false"' in answer.text
    assert "teach.js" not in answer.text


def test_a_candidate_awaiting_its_signature_shows_its_figures_files_and_how_to_push_it(
    pages: Pages, tmp_path: Path
) -> None:
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# defect-patchcore 1.0.0\n")
    with pages.sessions.begin() as session:
        session.add(TrainingRun(
            dataset_id=DATASET, status="succeeded", requested_by="user:otto", created_at=utcnow(),
            started_at=utcnow(), finished_at=utcnow(), code_version="factory-edge 0.1.0 (abc123)", seed=3,
            parameters={"seed": 3, "frr": 0.01}, model_name="defect-patchcore", model_version="1.0.0",
            figures={"threshold": 1.25, "target_false_reject_rate": 0.01, "threshold_frames": 5,
                     "frames": {"train/good": 16, "test/good": 4, "test/scratch": 2},
                     "held_out": {"image_auroc": 0.875, "f1": 0.5}, "held_out_note": None},
            artifacts={"MODEL_CARD.md": keep_file(pages.stores.training, card)}, artifact_sha256="ab" * 32,
            log_tail="wrote MODEL_CARD.md (measured figures)", signed=False,
        ))  # fmt: skip
    login(pages.client, "vera")
    view = pages.client.get("/training/1").text
    assert '<span class="badge warn" id="run-status">succeeded, awaiting signature</span>' in view
    assert "factoryctl runs download 1 --out run-1" in view
    assert "factoryctl models push run-1/defect-patchcore-1.0.0.onnx" in view
    assert "<dt>image auroc</dt><dd>0.875</dd>" in view
    assert "train/good 16" in view
    assert "<code>factory-edge 0.1.0 (abc123)</code>" in view
    assert '<pre id="log-tail">wrote MODEL_CARD.md (measured figures)</pre>' in view
    download = pages.client.get("/console/training/1/files/MODEL_CARD.md")
    assert (download.status_code, download.content) == (200, b"# defect-patchcore 1.0.0\n")
    listing = pages.client.get("/training").text
    assert '<tr data-run="1">' in listing
    assert "awaiting signature" in listing
    assert pages.client.get(f"/training?dataset={DATASET}").text.count("<tr data-run=") == 1
