"""``factory-sim mvtec``: a folder factory-models can train on, and the flags a user gets wrong (one line
on stderr, exit status 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from simulators.cli import main

SMALL = ["--train", "2", "--test-good", "2", "--per-type", "1", "--width", "160", "--height", "120"]


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI, expect exit status 2, and return its single stderr line."""
    with pytest.raises(SystemExit) as exc:
        main(["mvtec", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("factory-sim mvtec: ")
    return err.strip()


def test_a_frame_too_small_names_width_and_height(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(["--out", str(tmp_path / "x"), *SMALL, "--width", "16", "--height", "16"], capsys)
    assert "--width 16 --height 16: frame size 16x16 is outside 160x120" in err
    assert not (tmp_path / "x").exists()  # checked before anything is written


@pytest.mark.parametrize("flag", ["--train", "--test-good", "--per-type", "--train-per-type"])
def test_a_negative_count_names_its_flag(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(["--out", str(tmp_path / "x"), *SMALL, flag, "-3"], capsys)
    assert err.endswith(f"image counts must be >= 0, got {flag} -3")


def test_no_train_images_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(["--out", str(tmp_path / "x"), *SMALL, "--train", "0"], capsys)
    assert "--train 0: the folder needs train/good images" in err


@pytest.mark.parametrize(("good", "per_type"), [("0", "3"), ("4", "0")])
def test_a_test_set_with_one_class_only_is_refused(
    good: str, per_type: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(
        ["--out", str(tmp_path / "x"), *SMALL, "--test-good", good, "--per-type", per_type], capsys
    )
    assert f"--test-good {good} with --per-type {per_type}: test/ needs both good and defective" in err


def test_no_test_set_at_all_is_a_train_only_folder(tmp_path: Path) -> None:
    out = tmp_path / "x"
    assert main(["mvtec", "--out", str(out), *SMALL, "--test-good", "0", "--per-type", "0"]) == 0
    assert len(list((out / "train" / "good").iterdir())) == 2
    assert not (out / "test").exists()


def test_a_negative_seed_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(["--out", str(tmp_path / "x"), *SMALL, "--seed", "-3"], capsys)
    assert err.endswith("--seed must be >= 0, got -3")


def test_an_out_that_is_a_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    err = _refused(["--out", str(target), *SMALL], capsys)
    assert err.endswith(f"--out {target}: is a file, not a folder")
    assert target.read_text() == "keep me"


def test_an_out_below_a_file_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("")
    err = _refused(["--out", str(blocker / "sub"), *SMALL], capsys)
    assert err.endswith(f"cannot create the folder, {blocker} is a file")


def test_an_unwritable_out_is_one_line_from_the_real_command() -> None:
    # /proc accepts no new folders, even for root (a chmod'd folder would not stop root).
    out = "/proc/factory-edge-mvtec-test"
    done = subprocess.run(
        [sys.executable, "-m", "simulators.cli", "mvtec", "--out", out, *SMALL],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"factory-sim mvtec: --out {out}: cannot create the folder (No such file or directory)"
    ]
    assert "Traceback" not in done.stderr


def test_an_earlier_folder_is_refused_unless_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second, smaller run into the same folder would leave the first run's images mixed in."""
    out = tmp_path / "x"
    assert main(["mvtec", "--out", str(out), *SMALL, "--train", "4"]) == 0
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    err = _refused(["--out", str(out), *SMALL], capsys)
    assert "already holds train/, test/, ground_truth/ from an earlier run" in err
    assert "--replace" in err
    assert len(list((out / "train" / "good").iterdir())) == 4  # refused: nothing touched
    assert main(["mvtec", "--out", str(out), *SMALL, "--replace"]) == 0
    assert len(list((out / "train" / "good").iterdir())) == 2  # only the new run's images
    assert (out / "notes.txt").read_text() == "mine"  # only the folders it writes are replaced


def test_mvtec_subcommand_writes_a_folder_factory_models_can_train_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "widgets"
    argv = ["mvtec", "--out", str(out), "--train", "3", "--test-good", "2", "--per-type", "1"]
    assert main([*argv, "--width", "320", "--height", "240"]) == 0
    assert sorted(p.name for p in (out / "train" / "good").iterdir()) == ["000.png", "001.png", "002.png"]
    assert len(list((out / "test" / "good").iterdir())) == 2
    kinds = sorted(p.name for p in (out / "test").iterdir() if p.name != "good")
    assert kinds == ["crack", "hole", "scratch", "stain"]
    assert sorted(p.name for p in (out / "ground_truth").iterdir()) == kinds
    image = cv2.imread(str(out / "test" / "hole" / "000.png"))
    assert image.shape == (240, 320, 3)
    assert f"factory-models train defect --data {out}" in capsys.readouterr().out


def test_mvtec_subcommand_names_a_bad_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["mvtec", "--out", str(tmp_path / "x"), "--train", "-1"])
    assert exc.value.code == 2
    assert "mvtec: image counts must be >= 0" in capsys.readouterr().err
