"""The demo's control endpoint: its lines and their cameras' looks, a switch of every camera of a
line, refusals that name what exists, and the state file other processes find it by."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.demo_control import STATE_FILE
from simulators.json_http import call_json
from simulators.looks import LOOKS
from tests.support.demo_lines import DemoLines, running_demo_lines

# Two cameras on line-1 (the demo with more gateways than lines), one on line-2.
PLAN = {"gw-1": "line-1", "gw-2": "line-2", "gw-4": "line-1"}


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoLines]:
    with running_demo_lines(tmp_path, PLAN) as running:
        yield running


def test_lines_lists_each_line_with_its_cameras_and_look(demo: DemoLines) -> None:
    status, answer = call_json("GET", f"{demo.url}/lines")
    assert status == 200
    assert answer["descriptions"] == LOOKS
    assert [line["line"] for line in answer["lines"]] == ["line-1", "line-2"]
    first = answer["lines"][0]
    assert (first["look"], first["looks"]) == ("normal", list(LOOKS))
    assert [(c["gateway"], c["camera"], c["look"]) for c in first["cameras"]] == [
        ("gw-1", demo.cameras["gw-1"].url, "normal"),
        ("gw-4", demo.cameras["gw-4"].url, "normal"),
    ]


def test_a_switch_changes_every_camera_of_the_line_and_no_other(demo: DemoLines) -> None:
    status, answer = call_json("POST", f"{demo.url}/lines/line-1/look", {"look": "unseen"})
    assert status == 200, answer
    assert (answer["line"], answer["look"]) == ("line-1", "unseen")
    assert [(c["gateway"], c["previous"]) for c in answer["cameras"]] == [
        ("gw-1", "normal"),
        ("gw-4", "normal"),
    ]
    assert (demo.look_of("gw-1"), demo.look_of("gw-4"), demo.look_of("gw-2")) == (
        "unseen",
        "unseen",
        "normal",
    )
    assert call_json("GET", f"{demo.url}/lines/line-1")[1]["look"] == "unseen"
    assert demo.control.looks.note() == "; looks: line-1 unseen"
    demo.cameras["gw-4"].set_look("dim")  # changed behind the control's back: the line is mixed
    assert call_json("GET", f"{demo.url}/lines/line-1")[1]["look"] == "mixed"


@pytest.mark.parametrize(
    ("path", "body", "status", "reason"),
    [
        ("/lines/line-9/look", {"look": "dim"}, 404, "no line 'line-9' in this demo; lines: line-1, line-2"),
        ("/lines/line-1/look", {"look": "foggy"}, 400, "unknown look 'foggy'; looks: normal, unseen, dim"),
        ("/lines/line-1/look", {"colour": "dim"}, 400, 'the body must be {"look": NAME}'),
        ("/lines/line-1", {"look": "dim"}, 404, "POST /lines/LINE/look"),
    ],
)
def test_a_bad_request_is_refused_naming_what_exists(
    demo: DemoLines, path: str, body: object, status: int, reason: str
) -> None:
    answer = call_json("POST", f"{demo.url}{path}", body)
    assert answer[0] == status
    assert reason in answer[1]["detail"]
    assert demo.look_of("gw-1") == "normal"


def test_an_unknown_line_or_path_to_read_is_404(demo: DemoLines) -> None:
    assert call_json("GET", f"{demo.url}/lines/line-9")[0] == 404
    assert "try /lines" in call_json("GET", f"{demo.url}/gateways")[1]["detail"]


def test_a_silent_camera_is_named_in_the_listing_and_fails_a_switch(demo: DemoLines) -> None:
    demo.cameras["gw-2"].stop()
    line = call_json("GET", f"{demo.url}/lines/line-2")[1]
    assert line["look"] is None
    assert "gw-2's camera at http://127.0.0.1:" in line["cameras"][0]["error"]
    status, answer = call_json("POST", f"{demo.url}/lines/line-2/look", {"look": "dim"})
    assert status == 502
    assert "did not answer" in answer["detail"]
    assert "line-2 unknown (camera not answering)" in demo.control.looks.note()


def test_the_state_file_says_where_the_control_is_until_it_stops(tmp_path: Path) -> None:
    state = tmp_path / STATE_FILE
    with running_demo_lines(tmp_path, {"gw-1": "line-1"}) as demo:
        assert json.loads(state.read_text()) == {"url": demo.url, "pid": os.getpid()}
    assert not state.exists()
