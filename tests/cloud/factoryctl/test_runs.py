"""factoryctl runs: start a training run (following it with --wait), list and show runs, and
download an unsigned candidate's files checked against their SHA-256; refusals name the reason."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker
from cloud.factoryctl import cli as factoryctl
from cloud.training.teach import Stores
from tests.support.production import production_settings
from tests.support.releases import RecordingPublisher
from tests.support.teach import FAST, ThreadQueue, simulated_dataset
from tests.support.testclient import TestClient
from tests.support.tokens import mint_tokens

DATASET, TOO_SMALL = "cap-00000000000c1", "cap-00000000000c2"


@dataclass
class Cloud:
    client: TestClient
    tokens: dict[str, str]
    sessions: sessionmaker[Session]
    settings: CloudSettings
    queue: ThreadQueue


@pytest.fixture
def cloud(db_url: str, tmp_path: Path) -> Iterator[Cloud]:
    tokens = mint_tokens(db_url)
    settings = production_settings(db_url, tmp_path)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    queue = ThreadQueue(sessions, settings)
    with TestClient(create_app(settings, RecordingPublisher(), teach_queue=queue)) as client:
        yield Cloud(client, tokens, sessions, settings, queue)
    queue.join()
    engine.dispose()


def ctl(cloud: Cloud, tmp_path: Path, who: str, *argv: str) -> int:
    env = {
        "FACTORYCTL_CONFIG": str(tmp_path / "cfg" / "config.json"),
        "FACTORY_API_URL": "http://testserver",
        "FACTORY_API_TOKEN": cloud.tokens[who],
    }
    return factoryctl.main(list(argv), environ=env, client=cloud.client)


def fast_flags() -> list[str]:
    return [arg for name, value in FAST.items() for arg in (f"--{name.replace('_', '-')}", str(value))]


def test_start_wait_show_list_and_download_an_unsigned_candidate(
    cloud: Cloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    simulated_dataset(cloud.sessions, Stores.of(cloud.settings).captures, DATASET, good=20)
    assert ctl(cloud, tmp_path, "viewer", "runs", "start", "--dataset", DATASET) == 3
    assert "needs the operator role" in capsys.readouterr().err

    code = ctl(cloud, tmp_path, "operator", "runs", "start", "--dataset", DATASET, *fast_flags(), "--wait")
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "run 1: running" in err  # progress while it fits
    assert "succeeded" in out.splitlines()[1]
    assert "auroc" in out.lower() or "threshold" in out  # the fit's figures
    assert "awaiting a signature" in out  # this cloud holds no signing key
    assert "factoryctl runs download 1 --out run-1" in out

    assert ctl(cloud, tmp_path, "viewer", "runs", "list", "--dataset", DATASET) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split()[:3] == ["ID", "DATASET_ID", "STATUS"]
    assert listed[1].split()[:3] == ["1", DATASET, "succeeded"]

    assert ctl(cloud, tmp_path, "viewer", "--json", "runs", "show", "1") == 0
    run = json.loads(capsys.readouterr().out)
    out_dir = tmp_path / "run-1"
    assert ctl(cloud, tmp_path, "viewer", "runs", "download", "1", "--out", str(out_dir)) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(run["artifacts"])
    for name, entry in run["artifacts"].items():
        assert hashlib.sha256((out_dir / name).read_bytes()).hexdigest() == entry["sha256"]
    assert not out_dir.with_name("run-1.part").exists()

    assert ctl(cloud, tmp_path, "viewer", "runs", "download", "1", "--out", str(out_dir)) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err


def test_a_dataset_that_cannot_teach_fails_the_run_and_says_why(
    cloud: Cloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    simulated_dataset(cloud.sessions, Stores.of(cloud.settings).captures, TOO_SMALL, good=5)
    assert ctl(cloud, tmp_path, "operator", "runs", "start", "--dataset", TOO_SMALL) == 1
    out = capsys.readouterr().out
    assert "failed" in out.splitlines()[1]
    assert "failed: " in out
    assert "good" in out  # the shortfall names the good frames it lacks
    assert ctl(cloud, tmp_path, "viewer", "runs", "download", "1", "--out", str(tmp_path / "x")) == 1
    assert "has no files to download" in capsys.readouterr().err
    assert ctl(cloud, tmp_path, "viewer", "runs", "show", "99") == 4
    assert "99" in capsys.readouterr().err
