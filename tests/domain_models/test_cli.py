"""``factory-models``: domain dispatch and the errors a user gets for bad input (no training here)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import domain_models.cli as cli
from domain_models.anomaly.data import DatasetError, open_mvtec
from domain_models.cli import main


def _good_folder(root: Path, count: int) -> Path:
    rng = np.random.default_rng(0)
    for sub in ("train/good", "test/good", "test/scratch"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        cv2.imwrite(
            str(root / "train" / "good" / f"{i:03d}.png"), rng.integers(0, 255, (40, 40, 3), np.uint8)
        )
    for sub in ("test/good", "test/scratch"):
        for i in range(2):
            cv2.imwrite(str(root / sub / f"{i:03d}.png"), rng.integers(0, 255, (40, 40, 3), np.uint8))
    return root


def test_train_on_a_non_mvtec_folder_names_the_missing_folder(tmp_path: Path, capsys) -> None:
    (tmp_path / "images").mkdir()
    code = main(["train", "defect", "--data", str(tmp_path), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 2
    assert "not an MVTec AD folder" in err
    assert str(tmp_path / "train" / "good") in err
    # The folder is the problem: nothing about labelled defects or the model is said first.
    assert out == ""


def test_too_few_good_images_are_refused_with_the_count(tmp_path: Path, capsys) -> None:
    data = _good_folder(tmp_path / "d", 4)
    code = main(["train", "defect", "--data", str(data), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "4 image(s)" in err
    assert str(data / "train" / "good") in err


def test_unreadable_image_is_named(tmp_path: Path, capsys) -> None:
    data = _good_folder(tmp_path / "d", 20)
    broken = data / "train" / "good" / "007.png"
    broken.write_bytes(b"not a png at all")
    code = main(
        ["train", "defect", "--data", str(data), "--out", str(tmp_path / "out"), "--max-images", "20"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"cannot read image {broken}" in err


def test_evaluate_without_test_good_names_it(tmp_path: Path) -> None:
    data = _good_folder(tmp_path / "d", 20)
    shutil.rmtree(data / "test" / "good")
    with pytest.raises(DatasetError, match=r"missing .*test/good"):
        open_mvtec(data, min_train=0)


def test_evaluate_infers_the_domain_from_the_manifest_task(tmp_path: Path, capsys, monkeypatch) -> None:
    manifest = tmp_path / "m.manifest.json"
    manifest.write_text('{"task": "notes"}')
    # A registry entry that cannot be imported stands for a colleague's domain not installed yet.
    monkeypatch.setitem(cli.DOMAINS, "notes", "domain_models.not_written_yet.commands")
    code = main(["evaluate", "--model", str(manifest), "--data", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "domain 'notes'" in err
    assert "domain_models.not_written_yet.commands" in err


def test_unknown_domain_and_command_are_named(capsys) -> None:
    assert main(["train", "widgets"]) == 2
    assert "unknown domain 'widgets'" in capsys.readouterr().err
    assert main(["fit", "defect"]) == 2
    assert "unknown command 'fit'" in capsys.readouterr().err


def test_evaluate_of_a_missing_manifest_says_so(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="not found"):
        main(["evaluate", "--model", str(tmp_path / "nope.manifest.json"), "--data", str(tmp_path)])


def test_evaluate_of_the_onnx_file_says_to_pass_the_manifest_beside_it(tmp_path: Path) -> None:
    (tmp_path / "m-1.0.0.onnx").write_bytes(b"\x08\x07onnx bytes")
    (tmp_path / "m-1.0.0.manifest.json").write_text("{}")
    with pytest.raises(
        SystemExit, match=r"is the model graph; pass .* with --model \(beside it: m-1.0.0.manifest.json\)"
    ):
        main(["evaluate", "--model", str(tmp_path / "m-1.0.0.onnx"), "--data", str(tmp_path)])


def test_help_at_every_level_prints_real_help_and_exits_0(capsys) -> None:
    assert main(["--help"]) == 0
    top = capsys.readouterr().out
    assert "domains: defect, parcels, notes" in top
    for command in cli.COMMANDS:
        assert command in top

    assert main(["train", "--help"]) == 0
    train = capsys.readouterr().out
    # Every domain's own flags, under its own heading.
    assert "== defect (factory-models train defect)" in train
    assert "== parcels (factory-models train parcels)" in train
    assert "== notes (factory-models train notes)" in train
    defect = train.split("== defect", 1)[1].split("== parcels", 1)[0]
    assert "--data" in defect
    assert "--frr" in defect
    squashed = " ".join(defect.split())  # argparse wraps lines at the terminal's width
    assert "False-reject rate the threshold targets (default: 0.01)" in squashed
    assert "Split and coreset seed (default: 0)" in squashed  # a zero default is still shown
    assert "(default: None)" not in squashed  # required flags have none to show

    assert main(["evaluate", "-h"]) == 0
    assert "== notes (factory-models evaluate)" in capsys.readouterr().out

    with pytest.raises(SystemExit) as exc:  # one domain's help is argparse's own
        main(["quantize", "defect", "--help"])
    assert exc.value.code == 0
    assert "--tolerance" in capsys.readouterr().out

    assert main(["train"]) == 2
    assert "factory-models train --help" in capsys.readouterr().err
