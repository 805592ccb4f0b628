"""``factory-sim lines show|set`` against a running demo's control endpoint, and its one-line errors
when there is no demo, no such line or no such look."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulators.cli import main
from simulators.demo_control import STATE_FILE
from tests.support.demo_lines import running_demo_lines

PLAN = {"gw-1": "line-1", "gw-2": "line-2"}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["lines", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_show_lists_each_camera_with_its_look(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_demo_lines(tmp_path, PLAN) as demo:
        camera = demo.cameras["gw-1"].url
        code, out, err = _run(capsys, "show", "--workdir", str(tmp_path))
    assert (code, err) == (0, "")
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["LINE", "LOOK", "GATEWAY", "KIND", "SINCE", "FRAME", "CAMERA"]
    assert rows[1] == ["line-1", "normal", "gw-1", "inspection", "0", camera]
    assert rows[2][:3] == ["line-2", "normal", "gw-2"]
    assert (
        out.splitlines()[-1]
        == "looks: normal, unseen, dim, warm, mesh (factory-sim lines set LINE --look LOOK)"
    )


def test_set_switches_the_line_and_says_what_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_demo_lines(tmp_path, PLAN) as demo:
        code, out, err = _run(capsys, "set", "line-2", "--look", "dim", "--workdir", str(tmp_path))
        assert (code, err) == (0, "")
        assert out.startswith("line-2: look dim (gw-2 normal -> dim from frame ")
        assert (demo.look_of("gw-2"), demo.look_of("gw-1")) == ("dim", "normal")
        code, out, _ = _run(capsys, "show", "--workdir", str(tmp_path))
        assert out.splitlines()[2].split()[:2] == ["line-2", "dim"]


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["set", "line-7", "--look", "dim"], "no line 'line-7' in this demo; lines: line-1, line-2"),
        (
            ["set", "line-1", "--look", "foggy"],
            "unknown look 'foggy'; looks: normal, unseen, dim, warm, mesh",
        ),
    ],
)
def test_an_unknown_line_or_look_is_one_line_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], reason: str
) -> None:
    with running_demo_lines(tmp_path, PLAN) as demo:
        code, out, err = _run(capsys, *argv, "--workdir", str(tmp_path))
        assert demo.look_of("gw-1") == "normal"
    assert (code, out, err) == (1, "", f"factory-sim lines: {reason}\n")


def test_no_demo_is_one_line_naming_the_workdir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "show", "--workdir", str(tmp_path))
    assert (code, out) == (1, "")
    assert err == (
        f"factory-sim lines: no demo running in {tmp_path} (no {tmp_path / STATE_FILE}); start one with "
        "`factory-sim demo`, or pass the --workdir it was started with\n"
    )


def test_a_demo_gone_without_cleaning_up_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_demo_lines(tmp_path, PLAN) as demo:
        url, left_behind = demo.url, (tmp_path / STATE_FILE).read_text()
    (tmp_path / STATE_FILE).write_text(left_behind)  # as after a kill -9
    code, _, err = _run(capsys, "set", "line-1", "--look", "dim", "--workdir", str(tmp_path))
    assert code == 1
    assert err.startswith(f"factory-sim lines: no demo answering at {url} (")
    assert err.endswith("has it stopped?\n")
    (tmp_path / STATE_FILE).write_text(json.dumps({"pid": 1}))
    assert "names no control URL" in _run(capsys, "show", "--workdir", str(tmp_path))[2]


def test_set_needs_a_line_and_a_look(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["lines", "set", "line-1"])
    assert "--look" in capsys.readouterr().err
