"""The model registry over HTTP: immutable versions, resumable uploads, Range downloads."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.api import create_app
from cloud.config import CloudSettings
from protocol.signing import public_key_pem
from tests.support.releases import RecordingPublisher, Release, make_release
from tests.support.testclient import TestClient
from tests.support.tokens import bearer, mint_tokens


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def settings(db_url: str, tmp_path: Path, key: Ed25519PrivateKey) -> CloudSettings:
    trusted = tmp_path / "trusted.pub"
    trusted.write_bytes(public_key_pem(key.public_key()))
    return CloudSettings(
        db_url=db_url,
        artifact_dir=str(tmp_path / "artifacts"),
        trusted_keys=[str(trusted)],
        public_url="http://cloud:8000",
    )


@pytest.fixture
def admin(settings: CloudSettings) -> Iterator[TestClient]:
    tokens = mint_tokens(settings.db_url)
    with TestClient(create_app(settings, RecordingPublisher()), headers=bearer(tokens["admin"])) as client:
        yield client


def upload(client: TestClient, release: Release, card: str | None = None) -> tuple[int, dict[str, object]]:
    data = release.artifact.read_bytes()
    put = client.put(f"/api/v1/blobs/{release.manifest.sha256}", params={"size": len(data)}, content=data)
    assert put.status_code == 200, put.text
    body = {
        "manifest": release.manifest.model_dump(mode="json"),
        "signature": release.signature.model_dump(mode="json"),
        "card": card,
    }
    response = client.post("/api/v1/models/versions", json=body)
    return response.status_code, response.json()


def test_version_shows_metrics_card_lineage_and_download_url(
    admin: TestClient, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    release = make_release(tmp_path / "r", "1.0", key)
    status, body = upload(admin, release, card="# defect-cnn 1.0\nRecall drops under glare.")
    assert status == 201, body
    got = admin.get("/api/v1/models/defect-cnn/versions/1.0").json()
    assert got["metrics"] == {"accuracy": 0.97, "recall_scratch": 0.95}
    assert got["lineage"]["code_commit"] == "abc1234"
    assert got["card"].startswith("# defect-cnn 1.0")
    assert got["artifact_url"] == f"http://cloud:8000/api/v1/blobs/{release.manifest.sha256}"
    assert got["signature_warning"] is None  # signed by the configured trusted key
    assert got["running_on"] == []
    assert admin.get("/api/v1/models", params={"q": "defect"}).json()[0]["versions"] == ["1.0"]
    assert admin.get("/api/v1/models", params={"q": "nothing-like-it"}).json() == []


def test_reupload_same_bytes_is_idempotent_and_different_bytes_conflict(
    admin: TestClient, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    first = make_release(tmp_path / "a", "1.0", key)
    assert upload(admin, first)[0] == 201
    assert upload(admin, first)[0] == 200
    changed = make_release(tmp_path / "b", "1.0", key, payload=b"other weights" * 40)
    status, body = upload(admin, changed)
    assert status == 409
    assert "already exists with a different artifact (stored sha256 " in str(body["detail"])
    assert "bump the version" in str(body["detail"])
    versions = admin.get("/api/v1/models/defect-cnn/versions").json()
    assert [(v["version"], v["sha256"]) for v in versions] == [("1.0", first.manifest.sha256)]
    # The same release with another card, or without its card: the message says the card differs.
    status, body = upload(admin, first, card="# a card")
    assert status == 409
    assert str(body["detail"]).startswith(
        "model defect-cnn version 1.0 already exists with a different model card;"
    )
    with_card = make_release(tmp_path / "c", "1.1", key)
    assert upload(admin, with_card, card="# card")[0] == 201
    status, body = upload(admin, with_card)
    assert "different model card (this push has none: pass the same --card)" in str(body["detail"])


def test_upload_resumes_from_the_servers_count_and_refuses_wrong_offsets_and_hashes(
    admin: TestClient,
) -> None:
    data = bytes(range(256)) * 40
    sha = hashlib.sha256(data).hexdigest()
    assert admin.get(f"/api/v1/blobs/{sha}/status").status_code == 404
    first = admin.put(f"/api/v1/blobs/{sha}", params={"size": len(data), "offset": 0}, content=data[:3000])
    assert first.json() == {"sha256": sha, "size_bytes": len(data), "received_bytes": 3000, "complete": False}
    # An interrupted client asks where to continue instead of starting over.
    assert admin.get(f"/api/v1/blobs/{sha}/status").json()["received_bytes"] == 3000
    wrong = admin.put(
        f"/api/v1/blobs/{sha}", params={"size": len(data), "offset": 100}, content=data[100:200]
    )
    assert wrong.status_code == 409
    assert "3000 bytes are held" in wrong.json()["detail"]
    rest = admin.put(f"/api/v1/blobs/{sha}", params={"size": len(data), "offset": 3000}, content=data[3000:])
    assert rest.json()["complete"] is True
    bad = b"x" * 10
    bad_sha = "0" * 64
    refused = admin.put(f"/api/v1/blobs/{bad_sha}", params={"size": 10}, content=bad)
    assert refused.status_code == 422
    assert "upload it again" in refused.json()["detail"]
    assert admin.get(f"/api/v1/blobs/{bad_sha}").status_code == 404


def test_download_honours_range_for_resumed_gateway_downloads(
    admin: TestClient, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    release = make_release(tmp_path / "r", "1.0", key)
    upload(admin, release)
    data = release.artifact.read_bytes()
    url = f"/api/v1/blobs/{release.manifest.sha256}"
    anonymous = TestClient(admin.app)  # gateways fetch by hash without an API token
    full = anonymous.get(url)
    assert full.status_code == 200
    assert full.content == data
    assert full.headers["accept-ranges"] == "bytes"
    part = anonymous.get(url, headers={"Range": "bytes=100-"})
    assert part.status_code == 206
    assert part.content == data[100:]
    assert part.headers["content-range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
    assert anonymous.get(url, headers={"Range": "bytes=10-19"}).content == data[10:20]
    assert anonymous.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416


def test_signature_by_an_untrusted_key_is_stored_with_a_warning(
    admin: TestClient, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    stranger = Ed25519PrivateKey.generate()
    status, body = upload(admin, make_release(tmp_path / "r", "2.0", stranger))
    assert status == 201
    assert "is not trusted" in str(body["signature_warning"])
    # The listing says which versions are untrusted, so a rollout form can say so beside them.
    trusted = make_release(tmp_path / "t", "1.0", key)
    assert upload(admin, trusted)[0] == 201
    listed = admin.get("/api/v1/models").json()
    assert [(m["versions"], m["untrusted"]) for m in listed] == [(["1.0", "2.0"], ["2.0"])]


def test_version_with_files_not_uploaded_is_refused(
    admin: TestClient, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    release = make_release(tmp_path / "r", "1.0", key)
    body = {
        "manifest": release.manifest.model_dump(mode="json"),
        "signature": release.signature.model_dump(mode="json"),
    }
    response = admin.post("/api/v1/models/versions", json=body)
    assert response.status_code == 422
    assert "not uploaded yet" in response.json()["detail"]
