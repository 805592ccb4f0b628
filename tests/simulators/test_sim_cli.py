"""``factory-sim mvtec`` and the demo banner: what a new user types and reads."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from simulators.cli import main
from simulators.demo_banner import DEMO_PASSWORD, banner
from simulators.fleet import VirtualGateway


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


def test_banner_prints_commands_that_name_the_demos_database(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cloud.db'}"
    gw = VirtualGateway(
        gateway_id="gw-1",
        line="line-1",
        kind="inspection",
        camera_port=1,
        http_port=2,
        config_path=tmp_path / "gw.yaml",
    )
    text = banner("mqtt://127.0.0.1:1883", "http://127.0.0.1:8000", db, [gw], tmp_path, "fe_token")
    lines = text.splitlines()
    tokens = next(line for line in lines if "tokens create" in line)
    assert tokens.split()[-4:] == ["--role", "viewer", "--db", db]
    assert any("users create" in line and line.endswith(f"--db {db}") for line in lines)
    # factoryctl is typed as it can be run from here (.venv/bin/... unless it is on PATH).
    login = next(line for line in lines if " login --url " in line).split()
    assert Path(login[0]).name == "factoryctl"
    assert login[1:] == ["login", "--url", "http://127.0.0.1:8000", "--token", "fe_token"]
    assert f"password {DEMO_PASSWORD}" in text
