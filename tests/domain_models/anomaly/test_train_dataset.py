"""``factory-models train defect --dataset ID``: a dataset of a real cloud API (uvicorn on a port)
is downloaded over HTTP, each file checked against the listing's SHA-256, trained on as ``--data
DIR`` would be, and named in the manifest's lineage; a tampered file, an unknown dataset or a
missing token stops it with one line."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cloud.config import CloudSettings
from domain_models.cli import main as factory_models
from protocol.manifest import load_manifest
from simulators.net import free_port
from tests.support.captures import ApiServer, manifest, mint_gateway_token, png_files, serving
from tests.support.tokens import bearer, mint_tokens

# The fastest settings the pipeline tests train with; 16 frames leave 13 to fit on after 3 held out.
FAST = ["--width", "128", "--height", "96", "--coreset", "50", "--threads", "2"]
FRAMES = 16


@dataclass
class Cloud:
    api: ApiServer
    viewer: str
    gateway: str

    def dataset(self, capture_id: str, count: int) -> list[str]:
        """``count`` good frames uploaded and registered by gw-1 as ``capture_id``; their SHA-256."""
        files = png_files(count)
        for file, data in files:
            answer = httpx.put(f"{self.api.url}/api/v1/captures/files/{file.sha256}", params={"size": len(data)},
                               content=data, headers=bearer(self.gateway))  # fmt: skip
            assert answer.status_code == 200, answer.text
        body = manifest(capture_id, "gw-1", [f for f, _ in files]).model_dump(mode="json")
        answer = httpx.put(f"{self.api.url}/api/v1/captures/{capture_id}/manifest", json=body,
                           headers=bearer(self.gateway))  # fmt: skip
        assert answer.status_code == 201, answer.text
        return [f.sha256 for f, _ in files]


@pytest.fixture
def cloud(db_url: str, tmp_path: Path) -> Iterator[Cloud]:
    # The production profile, as a plant runs it: every read needs a token.
    settings = CloudSettings(
        profile="production",
        db_url=db_url,
        broker_url="mqtts://broker.plant:8883",
        broker_username="cloud",
        broker_password="a-real-broker-password",
        api_port=free_port(),
        artifact_dir=str(tmp_path / "artifacts"),
    )
    with serving(settings) as api:
        yield Cloud(api, mint_tokens(db_url)["viewer"], mint_gateway_token(db_url, "gw-1"))


def train(cloud: Cloud, tmp_path: Path, *extra: str) -> int:
    argv = ["train", "defect", "--cloud", cloud.api.url, "--out", str(tmp_path / "out"), *FAST, *extra]
    return factory_models(argv)


def test_a_dataset_trains_and_the_manifest_names_it(
    cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shas = cloud.dataset("cap-0123456789ab", FRAMES)
    monkeypatch.setenv("FACTORY_API_TOKEN", cloud.viewer)
    kept = tmp_path / "kept"
    assert train(cloud, tmp_path, "--dataset", "cap-0123456789ab", "--dataset-dir", str(kept)) == 0
    assert f"dataset cap-0123456789ab from {cloud.api.url}: {FRAMES} files checked" in capsys.readouterr().out
    got = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in (kept / "train" / "good").iterdir())
    assert got == sorted(shas)
    assert json.loads((kept / "dataset.json").read_text())["id"] == "cap-0123456789ab"
    release = load_manifest(tmp_path / "out" / "defect-patchcore-1.0.0.manifest.json")
    assert release.lineage is not None
    assert (release.lineage.dataset_id, release.lineage.seed) == ("cap-0123456789ab", 0)
    card = (tmp_path / "out" / "MODEL_CARD.md").read_text()
    assert f"--dataset cap-0123456789ab --cloud {cloud.api.url}" in card


def test_a_file_that_does_not_match_its_hash_is_refused_and_nothing_is_trained(
    cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shas = cloud.dataset("cap-0123456789ab", FRAMES)
    blob = Path(cloud.api.settings.artifact_dir) / "captures" / shas[3][:2] / shas[3]
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF  # same size, so the server sends it whole
    blob.write_bytes(bytes(data))
    monkeypatch.setenv("FACTORY_API_TOKEN", cloud.viewer)
    kept = tmp_path / "kept"
    assert train(cloud, tmp_path, "--dataset", "cap-0123456789ab", "--dataset-dir", str(kept)) == 2
    err = capsys.readouterr().err
    assert f"000004.png hashes to {hashlib.sha256(data).hexdigest()}, the listing says {shas[3]}" in err
    assert "refusing to train on it" in err
    assert not kept.exists()
    assert not (tmp_path / "out").exists()


def test_unknown_datasets_missing_tokens_and_small_datasets_each_get_one_line(
    cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.dataset("cap-00000000000a", 5)
    monkeypatch.delenv("FACTORY_API_TOKEN", raising=False)
    assert train(cloud, tmp_path, "--dataset", "cap-00000000000a") == 2
    assert (
        "needs an API token (401); set FACTORY_API_TOKEN to a viewer's API token" in capsys.readouterr().err
    )
    monkeypatch.setenv("FACTORY_API_TOKEN", "not-a-token")
    assert train(cloud, tmp_path, "--dataset", "cap-00000000000a") == 2
    assert "refused the API token (401" in capsys.readouterr().err
    monkeypatch.setenv("FACTORY_API_TOKEN", cloud.viewer)
    assert train(cloud, tmp_path, "--dataset", "cap-ffffffffffff") == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"factory-models train defect: dataset cap-ffffffffffff: not found on {cloud.api.url} "
        "('factoryctl datasets list' lists them)"
    )
    assert train(cloud, tmp_path, "--dataset", "cap-00000000000a") == 2  # the trainer's own message
    err = capsys.readouterr().err
    assert "cap-00000000000a/train/good: 5 image(s)" in err
    assert "at least 13 good images are needed" in err
    with pytest.raises(SystemExit):
        train(cloud, tmp_path, "--dataset", "cap-00000000000a", "--data", str(tmp_path))
    assert "not allowed with argument" in capsys.readouterr().err
    assert (
        factory_models(["train", "defect", "--data", str(tmp_path), "--cloud", "http://x", "--out", "o"]) == 2
    )
    assert "--cloud and --dataset-dir go with --dataset ID" in capsys.readouterr().err
