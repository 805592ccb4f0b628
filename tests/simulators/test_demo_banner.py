"""The demo's banner: the commands it prints name the demo's own database, URL and token."""

from __future__ import annotations

from pathlib import Path

from simulators.demo_banner import DEMO_PASSWORD, banner
from simulators.fleet import VirtualGateway


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


def test_banner_names_the_look_control_and_the_scheduled_change(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cloud.db'}"
    plain = banner("mqtt://127.0.0.1:1883", "http://127.0.0.1:8000", db, [], tmp_path, "fe_token")
    assert "line looks" not in plain
    assert "look change" not in plain
    text = banner(
        "mqtt://127.0.0.1:1883", "http://127.0.0.1:8000", db, [], tmp_path, "fe_token",
        "http://127.0.0.1:4711", "line-1 -> unseen after 60 s",
    )  # fmt: skip
    looks = next(line for line in text.splitlines() if line.startswith("  line looks"))
    assert "factory-sim lines show |" in looks
    assert "lines set LINE --look LOOK" in looks
    assert looks.endswith("(control http://127.0.0.1:4711)")
    assert "  look change     line-1 -> unseen after 60 s (--change-look-after)" in text.splitlines()
