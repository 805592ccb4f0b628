"""The simulated camera serves MJPEG that OpenCV (the edge agent's camera source) can read."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from simulators.camera_line import CameraLine, CameraLineConfig
from simulators.mjpeg import MjpegConfig, MjpegServer


@pytest.fixture
def line() -> CameraLine:
    return CameraLine(CameraLineConfig(seed=8, width=320, height=240, defect_rate=0.5))


@pytest.fixture
def server(line: CameraLine) -> Iterator[MjpegServer]:
    before = set(threading.enumerate())
    srv = MjpegServer(line, MjpegConfig(port=0, fps=20.0))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        leaked = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
        assert leaked == [], f"threads left running after stop(): {leaked}"


def _match_errors(line: CameraLine, image: np.ndarray, upto: int) -> list[tuple[float, int]]:
    """Mean absolute pixel error against each rendered frame 0..upto, best first."""
    errors = [
        (float(np.abs(line.frame(i).image.astype(np.int16) - image.astype(np.int16)).mean()), i)
        for i in range(upto + 1)
    ]
    return sorted(errors)


def test_videocapture_reads_the_stream(server: MjpegServer, line: CameraLine) -> None:
    assert server.port > 0
    cap = cv2.VideoCapture(f"{server.url}/stream.mjpg")
    try:
        assert cap.isOpened(), "cv2.VideoCapture could not open the MJPEG stream"
        frames = []
        for _ in range(5):
            ok, image = cap.read()
            assert ok, "cv2.VideoCapture failed to read a frame from the stream"
            frames.append(image)
    finally:
        cap.release()
    assert all(f.shape == (240, 320, 3) for f in frames)
    latest = server.truth_snapshot()["latest_index"]
    assert isinstance(latest, int)
    # The pixels are the line's own frames, only JPEG-compressed.
    # Sensor noise survives JPEG and FFmpeg's YUV decode only roughly, hence the loose bound;
    # the margin over the next-best frame shows which frame it was.
    (err, index), (next_err, _) = _match_errors(line, frames[-1], latest)[:2]
    assert err < 6.0, f"streamed frame matches no rendered frame (best {index}: {err:.2f})"
    assert next_err > 2 * err


def test_frame_and_truth_endpoints_match_the_line(server: MjpegServer, line: CameraLine) -> None:
    with urllib.request.urlopen(f"{server.url}/frame.jpg", timeout=5) as resp:
        assert resp.headers["Content-Type"] == "image/jpeg"
        index = int(resp.headers["X-Frame-Index"])
        image = cv2.imdecode(np.frombuffer(resp.read(), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (240, 320, 3)
    assert np.abs(image.astype(np.int16) - line.frame(index).image.astype(np.int16)).mean() < 3.0

    time.sleep(0.3)  # let a few more frames render
    with urllib.request.urlopen(f"{server.url}/truth", timeout=5) as resp:
        truth = json.loads(resp.read())
    assert truth["fps"] == 20.0
    frames = truth["frames"]
    assert len(frames) >= 3
    assert [f["index"] for f in frames] == list(range(frames[0]["index"], frames[-1]["index"] + 1))
    assert frames[-1]["index"] == truth["latest_index"]
    for f in frames:
        assert f == line.frame(f["index"]).truth.to_dict()


def test_unknown_path_is_404(server: MjpegServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{server.url}/nope", timeout=5)
    assert info.value.code == 404
    info.value.close()


def test_stop_with_open_stream_ends_it_and_leaks_no_thread(line: CameraLine) -> None:
    before = set(threading.enumerate())
    srv = MjpegServer(line, MjpegConfig(port=0, fps=30.0))
    srv.start()
    resp = urllib.request.urlopen(f"{srv.url}/stream.mjpg", timeout=5)
    assert resp.read(len(b"--frame")) == b"--frame"
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 3.0
    rest = resp.read()  # the server closed the stream: EOF, not a hang
    resp.close()
    assert isinstance(rest, bytes)
    assert [t.name for t in set(threading.enumerate()) - before if t.is_alive()] == []
    with pytest.raises(RuntimeError, match="not started"):
        _ = srv.port


def test_bad_server_config_is_refused() -> None:
    with pytest.raises(ValueError, match="fps"):
        MjpegConfig(fps=0)
