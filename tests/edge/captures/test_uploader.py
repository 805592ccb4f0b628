"""The capture uploader against the real cloud API: a capture is uploaded and registered, an upload
cut mid-file resumes where the cloud's copy ends, a file the cloud holds is never sent again, a
restart picks up from the records on disk, and a capture the cloud refuses for good stays on disk."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud.config import CloudSettings
from edge_agent.captures.cloud_api import CaptureApi, CloudUnavailable
from edge_agent.captures.config import CaptureConfig
from edge_agent.captures.store import CaptureRecord, CaptureStore
from edge_agent.captures.uploader import Uploader
from edge_agent.outbox_streams import EventDraft
from protocol.messages import utcnow
from simulators.net import free_port
from tests.support.captures import ApiServer, mint_gateway_token, png_files, serving
from tests.support.tokens import bearer, mint_tokens
from tests.support.waiting import wait_for


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiServer]:
    settings = CloudSettings(db_url=db_url, api_port=free_port(), artifact_dir=str(tmp_path / "artifacts"))
    with serving(settings) as server:
        yield server


class Gateway:
    """A gateway's capture store with finished captures, and uploaders over it (one per 'run')."""

    def __init__(self, folder: Path, api: ApiServer, gateway_id: str = "gw-1") -> None:
        self.gateway_id = gateway_id
        self.store = CaptureStore(folder / "captures", 1 << 26)
        self.token = mint_gateway_token(api.settings.db_url, gateway_id)
        self.config = CaptureConfig(
            enabled=True, api_url=api.url, chunk_bytes=4096, retry_min_s=0.05, retry_max_s=0.2
        )
        self.events: list[EventDraft] = []
        self.stop = threading.Event()

    def captured(self, capture_id: str, first: int = 0, count: int = 3) -> CaptureRecord:
        now = utcnow()
        self.store.create(CaptureRecord(capture_id=capture_id, slot="defect", origin="operator", label="good",
                                        requested_by="token:test-operator", requested_frames=count,
                                        max_bytes=1 << 24, requested_at=now, started_at=now))  # fmt: skip
        for file, data in png_files(count, first=first):
            self.store.add_frame(capture_id, data, file)
        return self.store.finish(capture_id, "complete", None)

    def uploader(self, api: CaptureApi | None = None) -> Uploader:
        client = api or CaptureApi(self.config.api_url or "", lambda: self.token, 10)
        identity = (self.gateway_id, "line-1", "inspect-1")
        return Uploader(self.store, client, self.config, identity, self.events.append, self.stop)


@pytest.fixture
def gateway(tmp_path: Path, api: ApiServer) -> Gateway:
    return Gateway(tmp_path, api)


def dataset(api: ApiServer, capture_id: str) -> dict[str, object]:
    admin = mint_tokens(api.settings.db_url)["admin"]
    answer = httpx.get(
        f"{api.url}/api/v1/datasets/{capture_id}", headers=bearer(admin), params={"files_limit": 500}
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, object] = answer.json()
    return found


def test_a_finished_capture_is_uploaded_registered_and_its_frames_deleted(
    gateway: Gateway, api: ApiServer
) -> None:
    record = gateway.captured("cap-0000000000000001")
    uploader = gateway.uploader()
    uploader.start()
    try:
        wait_for(lambda: gateway.store.get(record.capture_id).phase == "registered", 30, "the registration")
    finally:
        gateway.stop.set()
        assert uploader.join(10)
    kept = dataset(api, record.capture_id)
    assert kept["status"] == "complete"
    assert kept["gateway_id"] == "gw-1"
    assert [(f["name"], f["sha256"]) for f in kept["files"]] == [(f.name, f.sha256) for f in record.files]  # type: ignore[attr-defined]
    assert gateway.store.used_bytes == 0
    assert uploader.bytes_sent == record.bytes
    assert [e.details["step"] for e in gateway.events] == ["uploaded"]


class CutAfter(CaptureApi):
    """The connection drops after the cloud stored the ``n``-th chunk, before its answer arrives."""

    def __init__(self, base: CaptureApi, n: int) -> None:
        self.__dict__.update(base.__dict__)
        self.left = n

    def put_chunk(self, sha256: str, size: int, offset: int, data: bytes) -> int:
        held = super().put_chunk(sha256, size, offset, data)
        self.left -= 1
        if self.left == 0:
            raise CloudUnavailable("connection reset by peer (test)")
        return held


def test_an_upload_cut_mid_file_resumes_where_the_clouds_copy_ends_after_a_restart(
    gateway: Gateway, api: ApiServer
) -> None:
    """Fault: the network drops in the middle of a file, after the cloud stored a chunk whose answer
    never came, and the agent restarts. Promise: the upload goes on from the cloud's offset; no byte
    is sent twice and the dataset is whole."""
    record = gateway.captured("cap-0000000000000002", count=1)
    size = record.files[0].size_bytes
    assert size > 3 * gateway.config.chunk_bytes  # a cut mid-file, not between files
    first = gateway.uploader(CutAfter(CaptureApi(api.url, lambda: gateway.token, 10), 2))
    with pytest.raises(CloudUnavailable):
        first.upload(record)
    assert gateway.store.get(record.capture_id).uploaded == []  # not confirmed: asked again next time

    restarted = CaptureStore(gateway.store.root, 1 << 26)
    gateway.store = restarted
    second = gateway.uploader()
    second.upload(restarted.get(record.capture_id))
    assert first.bytes_sent == gateway.config.chunk_bytes  # the chunk whose answer was lost is not counted
    assert first.bytes_sent + gateway.config.chunk_bytes + second.bytes_sent == size  # every byte once
    assert restarted.get(record.capture_id).phase == "registered"
    assert dataset(api, record.capture_id)["frames"] == 1


def test_a_file_the_cloud_holds_is_never_sent_again(gateway: Gateway, api: ApiServer) -> None:
    first = gateway.captured("cap-0000000000000003", first=0, count=3)
    second = gateway.captured("cap-0000000000000004", first=1, count=3)  # two frames in common
    uploader = gateway.uploader()
    uploader.upload(first)
    sent = uploader.bytes_sent
    uploader.upload(second)
    assert uploader.bytes_sent - sent == second.files[2].size_bytes  # only the new frame went over
    assert dataset(api, second.capture_id)["frames"] == 3


def test_a_capture_the_cloud_refuses_for_good_stays_on_disk_and_is_said(
    gateway: Gateway, api: ApiServer, tmp_path: Path
) -> None:
    other = Gateway(tmp_path / "gw-2", api, "gw-2")
    other.uploader().upload(other.captured("cap-0000000000000005", count=1))  # gw-2 registers the id first
    record = gateway.captured("cap-0000000000000005", count=1)
    gateway.uploader().upload(record)
    kept = gateway.store.get(record.capture_id)
    assert kept.phase == "rejected"
    assert kept.problem == (
        "HTTP 409: capture cap-0000000000000005 was asked of gateway gw-2 slot defect, not gw-1 slot defect"
    )
    assert gateway.store.file_path(record.capture_id, "000001.png").exists()
    assert gateway.events[-1].level == "error"
    assert gateway.events[-1].details["step"] == "rejected"
    assert gateway.store.in_phase("finished") == []  # not tried again


def test_a_token_replaced_in_its_file_is_used_without_a_restart(
    gateway: Gateway, api: ApiServer, tmp_path: Path
) -> None:
    """Fault: the gateway's token no longer opens the API (expired, revoked). Promise: uploads pause
    and say why, nothing is dropped, and a fresh token written to the file is used by the running
    uploader."""
    token_file = tmp_path / "api-token"
    token_file.write_text("fe_expired")
    token_file.chmod(0o600)
    config = gateway.config.model_copy(update={"token_file": token_file})
    record = gateway.captured("cap-0000000000000006", count=2)
    uploader = Uploader(gateway.store, CaptureApi(api.url, config.token, 10), config, ("gw-1", "line-1", "inspect-1"),
                        gateway.events.append, gateway.stop)  # fmt: skip
    uploader.start()
    try:
        wait_for(lambda: uploader.failures >= 2, 30, "the uploader to be refused twice")
        assert gateway.store.get(record.capture_id).phase == "finished"
        token_file.write_text(gateway.token)
        wait_for(lambda: gateway.store.get(record.capture_id).phase == "registered", 30, "the registration")
    finally:
        gateway.stop.set()
        assert uploader.join(10)
    assert dataset(api, record.capture_id)["frames"] == 2
