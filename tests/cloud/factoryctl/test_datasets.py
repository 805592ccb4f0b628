"""factoryctl captures and datasets: start, list and show captures; list, show and export datasets to
the folder the anomaly trainer reads, every file checked against its SHA-256."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud.factoryctl import cli as factoryctl
from domain_models.anomaly.data import MIN_TRAIN_GOOD, open_mvtec
from protocol.topics import TopicSpace
from tests.support.captures import CaptureCloud, capture_cloud


@pytest.fixture
def cloud(db_url: str, topic_space: TopicSpace, tmp_path: Path) -> Iterator[CaptureCloud]:
    with capture_cloud(db_url, topic_space, tmp_path) as running:
        yield running


def ctl(cloud: CaptureCloud, tmp_path: Path, who: str, *argv: str) -> int:
    env = {
        "FACTORYCTL_CONFIG": str(tmp_path / "cfg" / "config.json"),
        "FACTORY_API_URL": "http://testserver",
        "FACTORY_API_TOKEN": cloud.tokens[who],
    }
    client: httpx.Client = cloud.client
    return factoryctl.main(list(argv), environ=env, client=client)


def test_captures_start_list_and_show(
    cloud: CaptureCloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        ctl(
            cloud,
            tmp_path,
            "viewer",
            "captures",
            "start",
            "--line",
            "line-1",
            "--slot",
            "main",
            "--frames",
            "20",
        )
        == 3
    )
    assert "needs the operator role" in capsys.readouterr().err
    assert ctl(cloud, tmp_path, "operator", "captures", "start", "--slot", "main", "--frames", "2") == 2
    assert "exactly one of --line and --gateway" in capsys.readouterr().err
    code = ctl(cloud, tmp_path, "operator", "--json", "captures", "start", "--line", "line-1", "--slot", "main",
               "--frames", "20", "--label", "good", "--note", "running good parts")  # fmt: skip
    assert code == 0
    [made] = json.loads(capsys.readouterr().out)
    assert (made["gateway_id"], made["status"], made["note"]) == ("gw-a", "requested", "running good parts")
    assert ctl(cloud, tmp_path, "viewer", "captures", "list", "--line", "line-1") == 0
    listed = capsys.readouterr().out
    assert listed.splitlines()[0].split()[:5] == ["ID", "GATEWAY_ID", "LINE", "SLOT", "STATUS"]
    assert made["id"] in listed
    assert "requested" in listed
    assert ctl(cloud, tmp_path, "viewer", "captures", "show", "cap-ffffffffffffffff") == 4
    assert "no capture or dataset cap-ffffffffffffffff" in capsys.readouterr().err


def test_captures_start_wait_returns_once_the_gateway_registered(
    cloud: CaptureCloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The gateway's registration happens while factoryctl waits: the first status poll registers it.
    polls: list[str] = []
    original = cloud.client.request

    def request(method: str, url: str, **kwargs: object) -> httpx.Response:
        if method == "GET" and "/captures/cap-" in str(url) and not polls:
            polls.append(str(url))
            cloud.registered(str(url).rsplit("/", 1)[-1], 2)
        return original(method, url, **kwargs)  # type: ignore[arg-type]

    cloud.client.request = request  # type: ignore[method-assign]
    code = ctl(cloud, tmp_path, "operator", "--json", "captures", "start", "--gateway", "gw-a", "--slot", "main",
               "--frames", "2", "--wait", "--timeout", "30")  # fmt: skip
    assert code == 0
    [done] = json.loads(capsys.readouterr().out)
    assert (done["status"], done["frames"]) == ("complete", 2)


def test_datasets_list_show_and_export_to_the_trainers_layout(
    cloud: CaptureCloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [made] = cloud.start(gateway="gw-a", slot="main", frames=18, label="good")
    shas = cloud.registered(str(made["id"]), 18)
    labels = {"000017.png": "scratch", "000018.png": "skip"}
    cloud.call("PUT", f"/datasets/{made['id']}/labels", "operator", 200, json={"labels": labels})
    assert ctl(cloud, tmp_path, "viewer", "datasets", "list") == 0
    listed = capsys.readouterr().out
    assert made["id"] in listed
    assert "scratch:1,skip:1,unlabelled:16" in listed
    assert ctl(cloud, tmp_path, "viewer", "datasets", "show", str(made["id"])) == 0
    shown = capsys.readouterr().out
    assert all(sha in shown for sha in shas)

    out = tmp_path / "line-1-good"
    assert (
        ctl(cloud, tmp_path, "viewer", "datasets", "export", str(made["id"]), "--format", "mvtec", str(out))
        == 0
    )
    printed = capsys.readouterr()
    assert "test/good" in printed.out
    assert "train/good" in printed.out
    folder = open_mvtec(out, min_train=MIN_TRAIN_GOOD)  # what `factory-models train defect --data` opens
    assert len(folder.train) == 13
    assert folder.defect_types == ("scratch",)
    assert sorted(t.path.name for t in folder.test if not t.is_defect) == [
        f"{n:06d}.png" for n in (5, 10, 15)
    ]
    facts = json.loads((out / "dataset.json").read_text())
    for entry in facts["files"]:
        assert hashlib.sha256((out / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    assert not (tmp_path / "line-1-good.part").exists()

    again = ctl(
        cloud, tmp_path, "viewer", "datasets", "export", str(made["id"]), "--format", "mvtec", str(out)
    )
    assert again == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
