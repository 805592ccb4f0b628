"""The Datasets pages: the captures list with the operators' "capture frames" form, and a dataset's
frames as a gallery, a page at a time, each frame served through the console with the user's token."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.api import create_app
from cloud.config import CloudSettings
from protocol.messages import ModelRef
from protocol.topics import TopicSpace
from tests.support.captures import RecordingOrders, manifest, mint_gateway_token, png_files
from tests.support.console import ORIGIN, PASSWORD, login, seed_console
from tests.support.releases import RecordingPublisher
from tests.support.testclient import TestClient
from tests.support.tokens import bearer


@dataclass
class Datasets:
    client: TestClient
    orders: RecordingOrders
    gateway_token: str

    def register(self, frames: int, **extra: Any) -> str:
        """gw-a's capture of ``frames`` frames, started by the API and registered by the gateway
        (``extra``: more manifest fields, e.g. the model)."""
        login(self.client, "otto")
        answer = self.client.post("/datasets", data={"target": "gateway:gw-a", "slot": "main", "frames": str(frames)},
                                  headers=ORIGIN, follow_redirects=False)  # fmt: skip
        assert answer.status_code == 303, answer.text
        capture_id = self.orders.latest("gw-a").orders[-1].capture_id
        files = png_files(frames)
        for _f, data in files:
            sha = hashlib.sha256(data).hexdigest()
            put = self.client.put(f"/api/v1/captures/files/{sha}", params={"size": len(data)}, content=data,
                                  headers=bearer(self.gateway_token))  # fmt: skip
            assert put.status_code == 200, put.text
        body = manifest(capture_id, "gw-a", [f for f, _ in files], **extra).model_dump(mode="json")
        done = self.client.put(
            f"/api/v1/captures/{capture_id}/manifest", json=body, headers=bearer(self.gateway_token)
        )
        assert done.status_code == 201, done.text
        return capture_id


@pytest.fixture
def pages(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Datasets]:
    settings = CloudSettings(
        db_url=db_url, artifact_dir=str(tmp_path / "artifacts"), topic_root=topic_space.root
    )
    seed_console(settings, topic_space, Ed25519PrivateKey.generate(), tmp_path / "release")
    orders = RecordingOrders()
    with TestClient(create_app(settings, RecordingPublisher(), orders)) as client:
        yield Datasets(client, orders, mint_gateway_token(db_url, "gw-a"))


def test_viewers_see_the_captures_and_operators_start_one_from_the_form(pages: Datasets) -> None:
    login(pages.client, "vera")
    page = pages.client.get("/datasets").text
    assert "No captures yet." in page
    assert 'id="start-capture"' not in page
    login(pages.client, "otto")
    page = pages.client.get("/datasets").text
    assert '<option value="line:line-1" selected>every gateway of line-1</option>' in page
    form = {
        "target": "line:line-1",
        "slot": "main",
        "frames": "150",
        "label": "good",
        "note": "running good parts",
    }
    answer = pages.client.post("/datasets", data=form, headers=ORIGIN, follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/datasets")
    [order] = pages.orders.latest("gw-a").orders
    assert (order.frames, order.label, order.note, order.requested_by) == (
        150,
        "good",
        "running good parts",
        "user:otto",
    )
    table = re.search(r'<table id="captures">.*?</table>', pages.client.get("/datasets").text, re.S)
    assert table is not None
    assert order.capture_id in table.group(0)
    assert "requested" in table.group(0)


def test_a_refused_capture_is_shown_beside_the_form_with_what_was_typed(pages: Datasets) -> None:
    login(pages.client, "otto")
    form = {"target": "line:line-1", "slot": "main", "frames": "5000", "label": "good"}
    answer = pages.client.post("/datasets", data=form, headers=ORIGIN)
    assert answer.status_code == 422
    assert 'id="error-frames"' in answer.text
    assert 'value="5000"' in answer.text
    wrong_slot = pages.client.post("/datasets", data={**form, "frames": "5", "slot": "lens"}, headers=ORIGIN)
    assert wrong_slot.status_code == 422
    assert "slot lens: no camera slot of that name" in wrong_slot.text


def test_a_dataset_shows_its_frames_a_page_at_a_time(pages: Datasets) -> None:
    capture_id = pages.register(50)
    login(pages.client, "vera")
    first = pages.client.get(f"/datasets/{capture_id}").text
    assert first.count("<figure data-file=") == 48
    assert "page 1 of 2" in first
    assert 'rel="next"' in first
    second = pages.client.get(f"/datasets/{capture_id}", params={"page": 2}).text
    assert re.findall(r'data-file="([^"]+)"', second) == ["000049.png", "000050.png"]
    frame = pages.client.get(f"/console/datasets/{capture_id}/files/000050.png")
    assert frame.status_code == 200
    assert frame.headers["content-type"] == "image/png"
    assert hashlib.sha256(frame.content).hexdigest() == png_files(50)[49][0].sha256
    assert f'<a href="/datasets/{capture_id}">' in pages.client.get("/datasets").text
    pages.client.cookies.clear()
    assert pages.client.get(f"/console/datasets/{capture_id}/files/000050.png").status_code == 401


LABELS_AT = "/console/datasets/{}/labels"


def _label(pages: Datasets, capture_id: str, label: str, files: list[str]) -> Any:
    """The label bar's post (labels.js): ``label=...&file=...&file=...``."""
    body = urlencode([("label", label), *(("file", f) for f in files)])
    headers = {**ORIGIN, "Content-Type": "application/x-www-form-urlencoded"}
    return pages.client.post(LABELS_AT.format(capture_id), content=body, headers=headers)


def test_operators_get_the_label_bar_with_the_models_kinds_viewers_only_the_labels(pages: Datasets) -> None:
    # The seeded registry's defect-cnn 1.0 knows ok (its good label) and scratch.
    model = ModelRef(name="defect-cnn", version="1.0", sha256="ab" * 32)
    capture_id = pages.register(3, model=model)
    login(pages.client, "otto")
    page = pages.client.get(f"/datasets/{capture_id}").text
    assert 'id="label-bar"' in page
    assert '<button type="button" data-label="good"><kbd>g</kbd> good</button>' in page
    assert '<button type="button" data-label="scratch" data-key="1"><kbd>1</kbd> scratch</button>' in page
    assert '<button type="button" data-label="skip"><kbd>s</kbd> skip</button>' in page
    assert 'data-label="ok"' not in page  # the model's good label is the good button
    assert 'id="new-kind"' not in page  # the model names the kinds
    assert page.count('role="checkbox" aria-checked="false"') == 3
    assert '<span data-k="labelled">0</span> labelled, <span data-k="unlabelled">3</span> unlabelled' in page
    login(pages.client, "vera")
    page = pages.client.get(f"/datasets/{capture_id}").text
    assert 'id="label-bar"' not in page
    assert "labels.js" not in page
    assert 'role="checkbox"' not in page
    assert '<span data-k="unlabelled">3</span> unlabelled' in page


def test_without_a_known_model_the_kinds_used_are_offered_with_a_new_kind_field(pages: Datasets) -> None:
    capture_id = pages.register(3)
    login(pages.client, "otto")
    assert _label(pages, capture_id, "dent", ["000002.png"]).status_code == 200
    page = pages.client.get(f"/datasets/{capture_id}").text
    assert '<button type="button" data-label="dent" data-key="1"><kbd>1</kbd> dent</button>' in page
    assert 'id="new-kind"' in page


def test_the_label_bar_labels_through_the_api_as_the_user(pages: Datasets) -> None:
    capture_id = pages.register(4)
    login(pages.client, "otto")
    answer = _label(pages, capture_id, "good", ["000001.png", "000003.png", "000004.png"])
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"label": "good", "files": ["000001.png", "000003.png", "000004.png"],
                             "changed": 3, "labelled": 3, "unlabelled": 1}  # fmt: skip
    page = pages.client.get(f"/datasets/{capture_id}").text
    tile = re.search(r'<figure data-file="000003.png" data-label="good".*?</figure>', page, re.S)
    assert tile is not None
    assert '<span class="frame-label">good</span>' in tile.group(0)
    assert '<span data-k="labelled">3</span> labelled, <span data-k="unlabelled">1</span> unlabelled' in page
    admin = pages.client.post("/api/v1/auth/login", json={"username": "ada", "password": PASSWORD})
    audit = pages.client.get("/api/v1/audit", params={"action": "dataset.label"},
                             headers=bearer(admin.json()["token"]))  # fmt: skip
    [entry] = audit.json()
    assert entry["actor"] == "user:otto"
    assert entry["details"]["files"]["000003.png"] == [None, "good"]


def test_refused_labels_say_why(pages: Datasets) -> None:
    capture_id = pages.register(2)
    login(pages.client, "otto")
    anomaly = _label(pages, capture_id, "anomaly", ["000001.png"])
    assert anomaly.status_code == 422
    assert "is an anomaly model's own verdict, not a kind" in anomaly.text
    unknown = _label(pages, capture_id, "good", ["000001.png", "999999.png"])
    assert unknown.status_code == 422
    assert "has no file 999999.png; nothing was labelled" in unknown.text
    assert _label(pages, capture_id, "good", []).text == "select at least one frame to label"
    assert _label(pages, "cap-nosuch", "good", ["000001.png"]).status_code == 404
    login(pages.client, "vera")
    refused = _label(pages, capture_id, "good", ["000001.png"])
    assert refused.status_code == 403
    assert "Your role may not do this" in refused.text
    pages.client.cookies.clear()
    assert _label(pages, capture_id, "good", ["000001.png"]).status_code == 401
    login(pages.client, "otto")
    page = pages.client.get(f"/datasets/{capture_id}").text
    assert '<span data-k="labelled">0</span> labelled' in page  # nothing refused was stored
