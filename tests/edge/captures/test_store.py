"""The capture store: its byte caps, the hashes it records, and what survives a crash or restart."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from edge_agent.captures.store import CaptureFull, CaptureRecord, CaptureStore
from protocol.messages import utcnow
from tests.support.captures import png_files


def record(capture_id: str = "cap-000000000001", frames: int = 3, max_bytes: int = 1 << 24) -> CaptureRecord:
    now = utcnow()
    return CaptureRecord(
        capture_id=capture_id,
        slot="defect",
        origin="operator",
        label="good",
        requested_by="token:test-operator",
        requested_frames=frames,
        max_bytes=max_bytes,
        requested_at=now,
        started_at=now,
    )


def test_frames_are_listed_with_the_sha256_of_the_bytes_on_disk(tmp_path: Path) -> None:
    store = CaptureStore(tmp_path, 1 << 24)
    store.create(record())
    for file, data in png_files(3):
        store.add_frame("cap-000000000001", data, file)
    kept = store.get("cap-000000000001")
    assert [f.name for f in kept.files] == ["000001.png", "000002.png", "000003.png"]
    for file in kept.files:
        on_disk = store.file_path("cap-000000000001", file.name).read_bytes()
        assert hashlib.sha256(on_disk).hexdigest() == file.sha256
        assert len(on_disk) == file.size_bytes
    assert store.used_bytes == sum(f.size_bytes for f in kept.files)


def test_a_capture_stops_at_its_own_byte_cap_and_the_store_at_its_cap(tmp_path: Path) -> None:
    (first, first_png), (second, second_png) = png_files(2)
    store = CaptureStore(tmp_path, 1 << 24)
    store.create(record(max_bytes=len(first_png) + len(second_png) - 1))
    store.add_frame("cap-000000000001", first_png, first)
    with pytest.raises(CaptureFull, match="capture's byte cap"):
        store.add_frame("cap-000000000001", second_png, second)
    assert not store.file_path("cap-000000000001", second.name).exists()  # nothing half-written

    small = CaptureStore(tmp_path / "small", len(first_png) + 10)
    small.create(record("cap-000000000002"))
    small.add_frame("cap-000000000002", first_png, first)
    with pytest.raises(CaptureFull, match="capture store is full"):
        small.add_frame("cap-000000000002", second_png, second)
    assert [f.name for f in small.get("cap-000000000002").files] == ["000001.png"]


def test_a_registered_capture_gives_its_bytes_back_and_keeps_its_record(tmp_path: Path) -> None:
    store = CaptureStore(tmp_path, 1 << 24)
    store.create(record(frames=2))
    for file, data in png_files(2):
        store.add_frame("cap-000000000001", data, file)
    store.finish("cap-000000000001", "complete", None)
    store.mark_registered("cap-000000000001")
    assert store.used_bytes == 0
    assert not list((tmp_path / "cap-000000000001").glob("*.png"))
    reopened = CaptureStore(tmp_path, 1 << 24)
    assert reopened.has("cap-000000000001")  # a repeated order is not captured twice
    assert reopened.get("cap-000000000001").phase == "registered"


def test_a_restart_keeps_every_recorded_frame_and_drops_a_frame_written_but_not_recorded(
    tmp_path: Path,
) -> None:
    """Fault: the agent dies between writing a frame file and recording it. Promise: every frame
    the record lists is whole after the restart, and nothing unlisted is uploaded."""
    store = CaptureStore(tmp_path, 1 << 24)
    store.create(record())
    (file, data), (_, stray) = png_files(2)
    store.add_frame("cap-000000000001", data, file)
    store.mark_uploaded("cap-000000000001", file.sha256)
    (tmp_path / "cap-000000000001" / "000002.png").write_bytes(stray[:100])
    (tmp_path / "cap-000000000001" / "000002.png.tmp").write_bytes(stray[:50])

    reopened = CaptureStore(tmp_path, 1 << 24)
    kept = reopened.get("cap-000000000001")
    assert kept.phase == "recording"
    assert [f.name for f in kept.files] == ["000001.png"]
    assert kept.uploaded == [file.sha256]
    assert sorted(p.name for p in (tmp_path / "cap-000000000001").iterdir()) == ["000001.png", "state.json"]


def test_an_unreadable_record_is_left_alone_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "cap-000000000009"
    folder.mkdir()
    (folder / "state.json").write_text("{not json")
    (folder / "000001.png").write_bytes(b"keep me")
    store = CaptureStore(tmp_path, 1 << 24)
    assert not store.has("cap-000000000009")
    assert (folder / "000001.png").read_bytes() == b"keep me"
    assert "cap-000000000009 has no readable state.json" in caplog.text
