"""Captures through the API: who may start them, which gateways an order reaches, resumable uploads
with a gateway's own token, registration (idempotent, bound to the token's gateway), and listing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.captures import CaptureOrders
from protocol.topics import TopicSpace
from tests.support.captures import CaptureCloud, capture_cloud, manifest, png_files


@pytest.fixture
def cloud(db_url: str, topic_space: TopicSpace, tmp_path: Path) -> Iterator[CaptureCloud]:
    with capture_cloud(db_url, topic_space, tmp_path) as running:
        yield running


def test_operators_start_captures_viewers_gateways_and_strangers_cannot(cloud: CaptureCloud) -> None:
    body = {"line": "line-1", "slot": "main", "frames": 20, "label": "good"}
    assert cloud.client.post("/api/v1/captures", json=body).status_code == 401
    refused = cloud.client.post("/api/v1/captures", json=body, headers=cloud.headers("viewer"))
    assert refused.status_code == 403
    assert "needs the operator role" in refused.json()["detail"]
    assert cloud.client.post("/api/v1/captures", json=body, headers=cloud.headers("gw-a")).status_code == 403
    [made] = cloud.start(**body)
    assert made["gateway_id"] == "gw-a"
    assert made["status"] == "requested"
    assert made["requested_by"] == "token:test-operator"
    assert made["max_bytes"] == 20 * (4 << 20)
    audit = cloud.call("GET", "/audit", "admin", 200, params={"action": "capture.start"})
    assert [(a["target"], a["details"]["frames"], a["details"]["label"]) for a in audit] == [
        (made["id"], 20, "good")
    ]


def test_a_gateway_token_reads_nothing(cloud: CaptureCloud) -> None:
    for path in ("/results", "/gateways", "/datasets", "/captures"):
        answer = cloud.client.get(f"/api/v1{path}", headers=cloud.headers("gw-a"))
        assert answer.status_code == 403, path
        assert "is gateway" in answer.json()["detail"]


def test_each_targeted_gateway_gets_its_order_in_its_retained_document(cloud: CaptureCloud) -> None:
    [first] = cloud.start(line="line-1", slot="main", frames=5, note="belt cleaned")
    [second] = cloud.start(gateway="gw-a", slot="main", frames=7, max_bytes=1 << 22)
    document = cloud.orders.latest("gw-a")
    assert isinstance(document, CaptureOrders)
    assert [(o.capture_id, o.frames, o.note) for o in document.orders] == [
        (first["id"], 5, "belt cleaned"),
        (second["id"], 7, None),
    ]
    assert document.orders[1].max_bytes == 1 << 22
    assert [d.revision for d in cloud.orders.published] == [1, 2]


def test_a_start_names_what_is_missing(cloud: CaptureCloud) -> None:
    no_line = cloud.start(status=422, line="line-9", slot="main", frames=5)
    assert "no gateway on line line-9 (lines: line-1, line-2)" in str(no_line)
    no_slot = cloud.start(status=422, line="line-1", slot="lens", frames=5)
    assert "slot lens: no camera slot of that name" in str(no_slot)
    assert "gw-a: main (defect)" in str(no_slot)
    no_gateway = cloud.start(status=422, gateway="gw-z", slot="main", frames=5)
    assert "gateway gw-z never connected (known: gw-a, gw-b)" in str(no_gateway)
    both = cloud.start(status=422, gateway="gw-a", line="line-1", slot="main", frames=5)
    assert "exactly one of line and gateway" in str(both)
    too_many = cloud.start(status=422, line="line-1", slot="main", frames=1001)
    assert "frames" in str(too_many)
    assert cloud.start(status=422, line="line-1", slot="main", frames=5, label="anomaly")


def test_a_broker_that_refuses_the_orders_leaves_the_capture_stored_for_the_worker(
    cloud: CaptureCloud,
) -> None:
    """Fault: the broker is down when an operator starts a capture. Promise: the capture is kept
    (nothing accepted is lost) and the worker's republish sends it once the broker is back."""
    from cloud.datasets.orders import republish
    from cloud.db import make_engine, make_sessionmaker

    cloud.orders.down = True
    answer = cloud.client.post(
        "/api/v1/captures",
        json={"gateway": "gw-a", "slot": "main", "frames": 3},
        headers=cloud.headers("operator"),
    )
    assert answer.status_code == 201
    assert answer.headers["x-orders-published"] == "false"
    cloud.orders.down = False
    engine = make_engine(cloud.db_url)
    try:
        assert republish(make_sessionmaker(engine), cloud.orders) == 1
    finally:
        engine.dispose()
    assert [o.capture_id for o in cloud.orders.latest("gw-a").orders] == [answer.json()[0]["id"]]


def test_uploads_resume_at_the_offset_the_cloud_holds_and_a_held_file_is_never_taken_twice(
    cloud: CaptureCloud,
) -> None:
    [(_file, data)] = png_files(1)
    sha = hashlib.sha256(data).hexdigest()
    path = f"/captures/files/{sha}"
    assert cloud.client.get(f"/api/v1{path}/status", headers=cloud.headers("gw-a")).status_code == 404
    half = len(data) // 2
    cloud.call("PUT", path, "gw-a", 200, params={"size": len(data), "offset": 0}, content=data[:half])
    held = cloud.call("GET", f"{path}/status", "gw-a", 200)
    assert (held["received_bytes"], held["complete"]) == (half, False)
    wrong = cloud.call("PUT", path, "gw-a", 409, params={"size": len(data), "offset": 0}, content=data[:half])
    assert f"but {half} bytes are held" in wrong["detail"]
    done = cloud.call(
        "PUT", path, "gw-a", 200, params={"size": len(data), "offset": half}, content=data[half:]
    )
    assert done["complete"] is True
    again = cloud.call("PUT", path, "gw-b", 200, params={"size": len(data), "offset": 0}, content=data)
    assert again["complete"] is True
    assert (
        cloud.client.put(
            f"/api/v1{path}", params={"size": 1}, content=b"x", headers=cloud.headers("operator")
        ).status_code
        == 403
    )
    bad = hashlib.sha256(b"other").hexdigest()
    refused = cloud.call("PUT", f"/captures/files/{bad}", "gw-a", 422, params={"size": 5}, content=b"wrong")
    past_end = cloud.call("PUT", path, "gw-a", 413, params={"size": 10, "offset": 0}, content=b"x" * 11)
    assert "over the limit of 10 bytes" in past_end["detail"]
    huge = cloud.call("PUT", path, "gw-a", 413, params={"size": 65 << 20}, content=b"x")
    assert "is over the 67108864-byte limit of a frame" in huge["detail"]
    assert "upload hashes to" in refused["detail"]


def test_registering_fills_the_requested_capture_and_is_idempotent(cloud: CaptureCloud) -> None:
    [made] = cloud.start(gateway="gw-a", slot="main", frames=3, label="good")
    files = png_files(3)
    found = manifest(str(made["id"]), "gw-a", [f for f, _ in files])
    missing = cloud.register("gw-a", found, 422)
    assert "files not uploaded yet: 000001.png, 000002.png, 000003.png" in missing["detail"]
    for _f, data in files:
        cloud.upload("gw-a", data)
    registered = cloud.register("gw-a", found)
    assert (registered["status"], registered["frames"], registered["labels"]) == (
        "complete",
        3,
        {"unlabelled": 3},
    )
    assert registered["total_bytes"] == sum(len(d) for _f, d in files)
    assert cloud.orders.latest("gw-a").orders == ()  # the order leaves the gateway's document
    assert (
        cloud.register("gw-a", found, 200)["registered_at"] == registered["registered_at"]
    )  # a retry doubles nothing
    other = manifest(str(made["id"]), "gw-a", [f for f, _ in files[:2]], requested=3)
    assert "already registered (complete) with other content" in cloud.register("gw-a", other, 409)["detail"]
    detail = cloud.call("GET", f"/datasets/{made['id']}", "viewer", 200)
    assert [(f["name"], f["sha256"]) for f in detail["files"]] == [(f.name, f.sha256) for f, _ in files]


def test_a_gateway_token_registers_only_its_own_gateways_captures(cloud: CaptureCloud) -> None:
    [made] = cloud.start(gateway="gw-b", slot="main", frames=1)
    [(file, data)] = png_files(1)
    cloud.upload("gw-a", data)
    refused = cloud.register("gw-a", manifest(str(made["id"]), "gw-b", [file]), 403)
    assert "bound to gateway gw-a; it cannot register a capture of gateway gw-b" in refused["detail"]
    stolen = cloud.register("gw-a", manifest(str(made["id"]), "gw-a", [file]), 409)
    assert f"capture {made['id']} was asked of gateway gw-b" in stolen["detail"]
    assert cloud.register("gw-b", manifest(str(made["id"]), "gw-b", [file]))["status"] == "complete"
    assert cloud.register("viewer", manifest("cap-0000000000000abc", "gw-b", [file]), 403)


def test_a_drift_capture_nobody_requested_becomes_a_dataset_and_a_refusal_is_kept(
    cloud: CaptureCloud,
) -> None:
    [(file, data)] = png_files(1)
    cloud.upload("gw-a", data)
    drift = manifest("cap-00000000000d71f7", "gw-a", [file], origin="drift", label=None,
                     requested_by="gateway:gw-a (drift)")  # fmt: skip
    assert cloud.register("gw-a", drift)["origin"] == "drift"
    [made] = cloud.start(gateway="gw-a", slot="main", frames=4)
    refusal = manifest(str(made["id"]), "gw-a", [], requested=4, status="refused",
                       reason="slot main is not on this gateway")  # fmt: skip
    assert cloud.register("gw-a", refusal)["reason"] == "slot main is not on this gateway"
    listed = cloud.call("GET", "/datasets", "viewer", 200)["items"]
    assert [d["id"] for d in listed] == ["cap-00000000000d71f7"]  # datasets hold frames; a refusal holds none
    assert {c["id"]: c["status"] for c in cloud.call("GET", "/captures", "viewer", 200)["items"]} == {
        "cap-00000000000d71f7": "complete",
        made["id"]: "refused",
    }


def test_captures_and_datasets_page_newest_first_with_filters(cloud: CaptureCloud) -> None:
    made = [cloud.start(gateway=gw, slot="main", frames=1)[0]["id"] for gw in ("gw-a", "gw-b", "gw-a")]
    page = cloud.call("GET", "/captures", "viewer", 200, params={"limit": 2})
    assert [c["id"] for c in page["items"]] == [made[2], made[1]]
    assert page["next_offset"] == 2
    rest = cloud.call("GET", "/captures", "viewer", 200, params={"limit": 2, "offset": 2})
    assert [c["id"] for c in rest["items"]] == [made[0]]
    assert rest["next_offset"] is None
    of_b = cloud.call("GET", "/captures", "viewer", 200, params={"gateway": "gw-b"})
    assert [c["id"] for c in of_b["items"]] == [made[1]]
    of_line = cloud.call("GET", "/captures", "viewer", 200, params={"line": "line-2", "status": "requested"})
    assert [c["id"] for c in of_line["items"]] == [made[1]]
    assert cloud.call("GET", "/captures/cap-ffffffffffffffff", "viewer", 404)["detail"] == (
        "no capture or dataset cap-ffffffffffffffff"
    )
