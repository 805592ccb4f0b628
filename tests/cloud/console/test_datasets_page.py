"""The Datasets pages: the captures list with the operators' "capture frames" form, and a dataset's
frames as a gallery, a page at a time, each frame served through the console with the user's token."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.api import create_app
from cloud.config import CloudSettings
from protocol.topics import TopicSpace
from tests.support.captures import RecordingOrders, manifest, mint_gateway_token, png_files
from tests.support.console import ORIGIN, login, seed_console
from tests.support.releases import RecordingPublisher
from tests.support.testclient import TestClient
from tests.support.tokens import bearer


@dataclass
class Datasets:
    client: TestClient
    orders: RecordingOrders
    gateway_token: str

    def register(self, frames: int) -> str:
        """gw-a's capture of ``frames`` frames, started by the API and registered by the gateway."""
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
        body = manifest(capture_id, "gw-a", [f for f, _ in files]).model_dump(mode="json")
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
