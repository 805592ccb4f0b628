"""The folder source: replays images in name order with file names as refs, loops at a rate, stops."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from edge_agent.config import FolderSourceConfig
from edge_agent.frames import DropPolicy
from edge_agent.sources import FolderSource, build_source
from tests.support.agent import Collector, write_frames


def test_folder_replays_in_name_order_with_file_names_as_refs(tmp_path: Path) -> None:
    names = write_frames(tmp_path, [10, 20, 30])
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"not a png")  # sorted first; skipped with a warning
    sink = Collector()
    config = FolderSourceConfig(type="folder", name="replay", path=tmp_path)
    source = build_source(config, sink, threading.Event())
    assert isinstance(source, FolderSource)
    source.start()
    assert source.join(5)
    assert [f.ref for f, _ in sink.frames] == names
    assert {p for _, p in sink.frames} == {DropPolicy.BLOCK}
    first = sink.frames[0][0]
    assert first.source == "replay"
    assert first.image.shape == (24, 32, 3)
    assert first.image.dtype == np.uint8
    assert first.captured_at.utcoffset() is not None


def test_folder_loop_respects_rate_and_stops(tmp_path: Path) -> None:
    write_frames(tmp_path, [10, 20])
    sink = Collector()
    stop = threading.Event()
    config = FolderSourceConfig(type="folder", name="replay", path=tmp_path, loop=True, rate_fps=20)
    source = build_source(config, sink, stop)
    source.start()
    time.sleep(0.5)
    stop.set()
    assert source.join(2)
    # ~10 frames in 0.5 s at 20 fps; looping repeats the two files in order
    assert 5 <= len(sink.frames) <= 13
    assert [f.ref for f, _ in sink.frames[:4]] == ["frame_000001.png", "frame_000002.png"] * 2
