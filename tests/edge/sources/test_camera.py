"""The camera source: a video file reopened when it ends, retries with backoff, an HTTP MJPEG stream."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from edge_agent.config import CameraSourceConfig
from edge_agent.frames import DropPolicy
from edge_agent.sources import CameraSource, build_source
from tests.support.agent import Collector
from tests.support.waiting import wait_for


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
