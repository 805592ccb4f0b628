"""The served camera's look switch: ``GET /look``, ``POST /look``, and ``/truth`` naming each frame's
look; every frame from the one the switch names is in the new look, every frame before in the old."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from simulators.camera_line import CameraLine, CameraLineConfig
from simulators.json_http import call_json
from simulators.looks import LOOKS, SwitchableLine
from simulators.mjpeg import MjpegConfig, MjpegServer
from tests.support.demo_lines import small_camera
from tests.support.waiting import wait_for


@pytest.fixture
def camera() -> Iterator[MjpegServer]:
    with small_camera(seed=8) as served:
        yield served


def _frame_jpeg(camera: MjpegServer) -> tuple[int, np.ndarray]:
    latest = camera.wait_for_frame(after=-1, timeout=5.0)
    assert latest is not None
    image = cv2.imdecode(np.frombuffer(latest.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return latest.index, image


def test_get_look_names_the_current_look_and_the_others(camera: MjpegServer) -> None:
    assert call_json("GET", f"{camera.url}/look") == (
        200,
        {"look": "normal", "looks": list(LOOKS), "from_index": 0},
    )
    assert call_json("GET", f"{camera.url}/truth")[1]["look"] == "normal"


def test_a_switch_holds_from_the_frame_it_names_on(camera: MjpegServer) -> None:
    status, switched = call_json("POST", f"{camera.url}/look", {"look": "warm"})
    assert status == 200, switched
    first = switched["from_index"]
    assert (switched["look"], switched["previous"]) == ("warm", "normal")
    assert call_json("GET", f"{camera.url}/look")[1] == {
        "look": "warm",
        "looks": list(LOOKS),
        "from_index": first,
    }
    wait_for(lambda: camera.truth_snapshot()["latest_index"] >= first + 2, what="frames after the switch")
    frames = camera.truth_snapshot()["frames"]
    assert isinstance(frames, list)
    assert {f["look"] for f in frames if f["index"] >= first} == {"warm"}
    assert {f["look"] for f in frames if f["index"] < first} == {"normal"}
    # The served pixels are the warm look's own frame of that index.
    index, image = _frame_jpeg(camera)
    line = camera.line
    assert isinstance(line, SwitchableLine)
    warm, normal = line.frame_in(index, "warm").image, line.frame_in(index, "normal").image
    error = np.abs(image.astype(np.int16) - warm.astype(np.int16)).mean()
    # JPEG keeps sensor noise only roughly, hence the loose bound; the margin tells the looks apart
    # (the normal look's frame is off by at least 2.2 times as much over this line's first frames).
    assert error < 6.0
    assert np.abs(image.astype(np.int16) - normal.astype(np.int16)).mean() > 1.5 * error


def test_switching_to_the_current_look_keeps_its_first_frame(camera: MjpegServer) -> None:
    assert call_json("POST", f"{camera.url}/look", {"look": "normal"})[1]["from_index"] == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"look": "foggy"}, "unknown look 'foggy'; looks: normal, unseen, dim, warm, mesh"),
        ({"looks": "dim"}, 'the body must be {"look": NAME}'),
        (["dim"], 'the body must be {"look": NAME}'),
        (None, 'the body must be {"look": NAME}'),
    ],
)
def test_a_bad_switch_is_refused_and_changes_nothing(camera: MjpegServer, body: object, reason: str) -> None:
    status, answer = call_json("POST", f"{camera.url}/look", body)
    assert status == 400
    assert reason in answer["detail"]
    assert call_json("GET", f"{camera.url}/look")[1]["look"] == "normal"


def test_other_posts_and_fixed_look_lines_say_what_exists() -> None:
    with MjpegServer(CameraLine(CameraLineConfig(seed=2, width=320, height=240)), MjpegConfig()) as fixed:
        assert call_json("GET", f"{fixed.url}/look") == (404, {"detail": "this line has a single look"})
        assert call_json("POST", f"{fixed.url}/look", {"look": "dim"})[0] == 404
        assert "look" not in fixed.truth_snapshot()
        status, answer = call_json("POST", f"{fixed.url}/frame.jpg", {"look": "dim"})
        assert status == 404
        assert "POST /look" in answer["detail"]
