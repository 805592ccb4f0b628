"""Datasets through the API: a dataset's files (paged, downloaded byte for byte), and labels set in
bulk by operators, all or nothing, with one audit entry per call saying who set what."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.topics import TopicSpace
from tests.support.captures import CaptureCloud, capture_cloud


@pytest.fixture
def cloud(db_url: str, topic_space: TopicSpace, tmp_path: Path) -> Iterator[CaptureCloud]:
    with capture_cloud(db_url, topic_space, tmp_path) as running:
        yield running


@pytest.fixture
def dataset(cloud: CaptureCloud) -> str:
    """gw-a's registered capture of 6 frames (label hint good)."""
    [made] = cloud.start(gateway="gw-a", slot="main", frames=6, label="good")
    cloud.registered(str(made["id"]), 6)
    return str(made["id"])


def label(
    cloud: CaptureCloud, dataset: str, who: str, status: int = 200, **labels: str | None
) -> dict[str, object]:
    body = {"labels": {f"{int(k.removeprefix('f')):06d}.png": v for k, v in labels.items()}}
    answer: dict[str, object] = cloud.call("PUT", f"/datasets/{dataset}/labels", who, status, json=body)
    return answer


def test_operators_label_many_files_at_once_and_the_audit_log_says_who_set_what(
    cloud: CaptureCloud, dataset: str
) -> None:
    assert label(cloud, dataset, "viewer", 403, f1="good")
    applied = label(cloud, dataset, "operator", f1="good", f2="good", f3="scratch", f4="skip")
    assert applied == {
        "dataset_id": dataset,
        "changed": 4,
        "labels": {"good": 2, "scratch": 1, "skip": 1, "unlabelled": 2},
    }
    again = label(cloud, dataset, "admin", f3="dent", f1="good", f5=None)
    assert again["changed"] == 1  # f1 was good already; f5 had none
    entries = cloud.call("GET", "/audit", "admin", 200, params={"action": "dataset.label"})
    assert [(e["actor"], e["target"], e["details"]) for e in entries] == [
        ("token:test-admin", dataset, {"changed": 1, "files": {"000003.png": ["scratch", "dent"]}}),
        ("token:test-operator", dataset, {"changed": 4, "files": {
            "000001.png": [None, "good"], "000002.png": [None, "good"],
            "000003.png": [None, "scratch"], "000004.png": [None, "skip"],
        }}),
    ]  # fmt: skip
    files = {f["name"]: f for f in cloud.call("GET", f"/datasets/{dataset}", "viewer", 200)["files"]}
    assert (files["000003.png"]["label"], files["000003.png"]["labelled_by"]) == ("dent", "token:test-admin")
    assert files["000006.png"]["label"] is None


def test_a_labels_call_naming_an_unknown_file_or_label_changes_nothing(
    cloud: CaptureCloud, dataset: str
) -> None:
    refused = label(cloud, dataset, "operator", 422, f1="good", f9="good")
    assert refused["detail"] == f"dataset {dataset} has no file 000009.png; nothing was labelled"
    anomaly = label(cloud, dataset, "operator", 422, f1="anomaly")
    assert "an anomaly model's own verdict, not a kind" in str(anomaly)
    bad_name = cloud.call(
        "PUT", f"/datasets/{dataset}/labels", "operator", 422, json={"labels": {"../x.png": "good"}}
    )
    assert bad_name
    assert cloud.call("GET", f"/datasets/{dataset}", "viewer", 200)["labels"] == {"unlabelled": 6}
    assert cloud.call("GET", "/audit", "admin", 200, params={"action": "dataset.label"}) == []


def test_files_page_in_capture_order_filter_by_label_and_download_byte_for_byte(
    cloud: CaptureCloud, dataset: str
) -> None:
    label(cloud, dataset, "operator", f2="scratch", f5="scratch")
    first = cloud.call("GET", f"/datasets/{dataset}", "viewer", 200, params={"files_limit": 4})
    assert [f["name"] for f in first["files"]] == [f"{n:06d}.png" for n in range(1, 5)]
    assert first["files_next_offset"] == 4
    rest = cloud.call(
        "GET", f"/datasets/{dataset}", "viewer", 200, params={"files_limit": 4, "files_offset": 4}
    )
    assert [f["name"] for f in rest["files"]] == ["000005.png", "000006.png"]
    assert rest["files_next_offset"] is None
    scratched = cloud.call("GET", f"/datasets/{dataset}", "viewer", 200, params={"file_label": "scratch"})
    assert [f["name"] for f in scratched["files"]] == ["000002.png", "000005.png"]
    unlabelled = cloud.call("GET", f"/datasets/{dataset}", "viewer", 200, params={"file_label": "unlabelled"})
    assert len(unlabelled["files"]) == 4
    for file in first["files"]:
        answer = cloud.client.get(
            f"/api/v1/datasets/{dataset}/files/{file['name']}", headers=cloud.headers("viewer")
        )
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/png"
        assert (
            hashlib.sha256(answer.content).hexdigest() == file["sha256"] == answer.headers["etag"].strip('"')
        )
    assert cloud.client.get(f"/api/v1/datasets/{dataset}/files/000001.png").status_code == 401
    missing = cloud.client.get(
        f"/api/v1/datasets/{dataset}/files/000099.png", headers=cloud.headers("viewer")
    )
    assert missing.status_code == 404


def test_a_capture_still_requested_has_nothing_to_label(cloud: CaptureCloud) -> None:
    [made] = cloud.start(gateway="gw-b", slot="main", frames=2)
    refused = label(cloud, str(made["id"]), "operator", 409, f1="good")
    assert refused["detail"] == f"capture {made['id']} is requested: it holds no files to label"
