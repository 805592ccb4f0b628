"""``factory-sim demo --change-look-after S``: the change happens once, when due, to the line and
look asked for; bad flags are refused before the demo starts anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.cli import build_parser, main
from simulators.demo_looks import DemoLooks, LookChange, look_change_from_args
from simulators.fleet import VirtualGateway
from simulators.net import free_port
from tests.support.demo_lines import small_camera


def test_the_change_fires_once_when_due_on_the_line_asked_for(tmp_path: Path) -> None:
    with small_camera(seed=1) as line_1, small_camera(seed=2) as line_2:
        looks = DemoLooks(tmp_path, LookChange(after_s=30.0, line="line-2", look="mesh"))
        looks.add_gateways(
            [
                VirtualGateway("gw-1", "line-1", "anomaly", line_1.port, 0, tmp_path / "gw-1.yaml"),
                VirtualGateway("gw-2", "line-2", "inspection", line_2.port, 0, tmp_path / "gw-2.yaml"),
            ]
        )
        looks.start()
        try:
            looks.tick(29.9)
            assert looks.note() == ""
            looks.tick(30.0)
            assert (line_2.look_state()[1]["look"], line_1.look_state()[1]["look"]) == ("mesh", "normal")
            assert looks.note() == "; looks: line-2 mesh"
            line_2.set_look("normal")
            looks.tick(90.0)  # once only: an operator's later change stands
            assert line_2.look_state()[1]["look"] == "normal"
        finally:
            looks.stop()


def test_a_failed_change_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    change = LookChange(after_s=1.0, line="line-1", look="dim")
    looks = DemoLooks(tmp_path, change)
    silent = free_port()  # no camera listens there
    looks.add_gateways([VirtualGateway("gw-1", "line-1", "anomaly", silent, 0, tmp_path / "gw-1.yaml")])
    looks.tick(5.0)
    looks.stop()
    assert change.done
    assert "the scheduled look change (line-1 -> dim after 1 s) failed: gw-1's camera" in caplog.text


def test_flags_make_the_change_with_its_defaults() -> None:
    args = build_parser().parse_args(["demo", "--change-look-after", "45"])
    assert look_change_from_args(args) == LookChange(after_s=45.0, line="line-1", look="unseen")
    args = build_parser().parse_args(["demo"])
    assert look_change_from_args(args) is None


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (["--change-look-after", "0"], "--change-look-after must be a positive number of seconds, got 0.0"),
        (["--change-look-after", "5", "--change-look-to", "foggy"], "--change-look-to: unknown look 'foggy'"),
        (
            ["--change-look-line", "line-2"],
            "--change-look-line and --change-look-to need --change-look-after S",
        ),
        (
            ["--change-look-after", "5", "--change-look-line", "line-3", "--gateways", "2"],
            "--change-look-line 'line-3': the demo's lines are line-1, line-2",
        ),
    ],
)
def test_bad_flags_are_refused_before_the_demo_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], reason: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["demo", "--workdir", str(tmp_path / "demo"), *flags])
    assert stopped.value.code == 2
    assert reason in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()
