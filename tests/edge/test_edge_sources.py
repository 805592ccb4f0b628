"""Sources and queues: folder replay order/loop/rate, camera on a video file with reopen, drop policies."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from edge_agent.config import CameraSourceConfig, FolderSourceConfig
from edge_agent.frames import DropPolicy, Frame, FrameQueue
from edge_agent.sources import CameraSource, FolderSource, build_source
from protocol.messages import utcnow

from .helpers import wait_for, write_frames


class Collector:
    def __init__(self) -> None:
        self.frames: list[tuple[Frame, DropPolicy]] = []

    def __call__(self, frame: Frame, policy: DropPolicy) -> None:
        self.frames.append((frame, policy))


def _frame(ref: str) -> Frame:
    return Frame("s", ref, utcnow(), np.zeros((2, 2, 3), np.uint8))


def test_drop_oldest_keeps_the_newest_and_block_waits_for_room() -> None:
    stop = threading.Event()
    queue = FrameQueue(2, stop)
    drops = [queue.put(_frame(str(i)), DropPolicy.DROP_OLDEST) for i in range(4)]
    assert drops == [0, 0, 1, 1]
    assert [f.ref for f in queue.get_batch(10, 0)] == ["2", "3"]

    queue.put(_frame("a"), DropPolicy.BLOCK)
    queue.put(_frame("b"), DropPolicy.BLOCK)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (queue.put(_frame("c"), DropPolicy.BLOCK), done.set()))
    thread.start()
    assert not done.wait(0.3)  # full: the producer waits instead of dropping
    assert [f.ref for f in queue.get_batch(1, 0)] == ["a"]
    assert done.wait(2)
    thread.join(2)
    assert [f.ref for f in queue.get_batch(10, 0)] == ["b", "c"]


def test_a_queue_is_not_idle_while_its_last_batch_is_being_worked_on() -> None:
    """The fault: the queue empties when the worker takes the last batch, before its results are
    stored; a replay that stopped there would miss them. Idle means taken AND marked done."""
    queue = FrameQueue(4, threading.Event())
    assert queue.idle
    queue.put(_frame("a"), DropPolicy.BLOCK)
    queue.put(_frame("b"), DropPolicy.BLOCK)
    batch = queue.get_batch(10, 0)
    assert len(queue) == 0
    assert not queue.idle
    queue.done(1)
    assert not queue.idle
    queue.done(len(batch) - 1)
    assert queue.idle


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


def test_camera_reads_a_video_file_and_reopens_when_it_ends(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    assert writer.isOpened()
    for i in range(3):
        writer.write(np.full((24, 32, 3), 50 * i, dtype=np.uint8))
    writer.release()
    sink = Collector()
    stop = threading.Event()
    config = CameraSourceConfig(type="camera", name="cam1", path=video, fps_limit=100, reopen_min_s=0.05)
    source = build_source(config, sink, stop)
    assert isinstance(source, CameraSource)
    source.start()
    try:
        wait_for(lambda: len(sink.frames) >= 5, 10, "frames across a reopen")
    finally:
        stop.set()
        assert source.join(5)
    assert source.opens >= 2
    assert [f.ref for f, _ in sink.frames[:5]] == [f"cam1#{i}" for i in range(1, 6)]
    assert {p for _, p in sink.frames} == {DropPolicy.DROP_OLDEST}
    assert sink.frames[0][0].image.shape == (24, 32, 3)


def test_camera_that_cannot_open_keeps_retrying_with_backoff(tmp_path: Path) -> None:
    sink = Collector()
    stop = threading.Event()
    config = CameraSourceConfig(
        type="camera", name="cam1", path=tmp_path / "missing.avi", reopen_min_s=0.05, reopen_max_s=0.1
    )
    source = build_source(config, sink, stop)
    source.start()
    time.sleep(0.4)
    assert source.running
    stop.set()
    assert source.join(2)
    assert not sink.frames


class _MjpegHandler(BaseHTTPRequestHandler):
    """Serves 10 JPEG frames as multipart/x-mixed-replace, then ends the stream (a camera dropping out)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        for i in range(10):
            ok, jpg = cv2.imencode(".jpg", np.full((24, 32, 3), i * 20, dtype=np.uint8))
            assert ok
            head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
            self.wfile.write(head + jpg.tobytes() + b"\r\n")
            time.sleep(0.01)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_camera_reads_an_http_mjpeg_stream_and_reopens_after_it_drops() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MjpegHandler)
    server.daemon_threads = True
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    sink = Collector()
    stop = threading.Event()
    url = f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    config = CameraSourceConfig(type="camera", name="cam1", url=url, fps_limit=1000, reopen_min_s=0.05)
    source = build_source(config, sink, stop)
    assert isinstance(source, CameraSource)
    source.start()
    try:
        wait_for(lambda: len(sink.frames) >= 12, 10, "frames from two stream sessions")
    finally:
        stop.set()
        assert source.join(5)
        server.shutdown()
        server.server_close()
        serving.join(2)
    assert source.opens >= 2
    assert sink.frames[0][0].image.shape == (24, 32, 3)
    assert [f.ref for f, _ in sink.frames[:12]] == [f"cam1#{i}" for i in range(1, 13)]
