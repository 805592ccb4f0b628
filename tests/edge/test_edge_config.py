"""Config: YAML errors name the file, the key path and the reason; relative paths resolve to the YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import CameraSourceConfig, ConfigError, FolderSourceConfig, load_config
from edge_agent.main import main

GOOD = """\
gateway_id: gw-1
line: line-1
state_dir: var/gw-1
mqtt: {url: "mqtt://127.0.0.1:1883", password_env: null}
sources:
  - {type: camera, name: cam1, url: "http://127.0.0.1:8081/stream.mjpg", fps_limit: 5}
  - {type: folder, name: replay, path: frames, pattern: "*.png"}
models:
  - {slot: defect, manifest: models/defect.manifest.json, sources: [cam1]}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return path


def test_good_config_resolves_relative_paths_against_the_yaml_folder(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD))
    assert config.station == "main"
    assert config.topic_root == "factory/v1"
    assert config.state_dir == tmp_path.resolve() / "var/gw-1"
    assert config.models[0].manifest == tmp_path.resolve() / "models/defect.manifest.json"
    camera, folder = config.sources
    assert isinstance(camera, CameraSourceConfig)
    assert camera.url == "http://127.0.0.1:8081/stream.mjpg"
    assert isinstance(folder, FolderSourceConfig)
    assert folder.path == tmp_path.resolve() / "frames"
    assert config.slot_sources(config.models[0]) == ["cam1"]
    assert config.mqtt.host == "127.0.0.1"
    assert config.mqtt.port == 1883
    assert not config.mqtt.use_tls


def test_bad_value_names_yaml_path_and_reason(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, GOOD.replace("fps_limit: 5", "fps_limit: 0")))
    assert "gateway.yaml: sources.0.fps_limit: Input should be greater than 0" in str(info.value)


def test_unknown_key_is_an_error_not_ignored(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, GOOD.replace("pattern:", "patern:")))
    assert "gateway.yaml: sources.1.patern: Extra inputs are not permitted" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, GOOD + "runtime: {threads: 1, max_btch: 4}\n"))
    assert "gateway.yaml: runtime.max_btch: Extra inputs are not permitted" in str(info.value)


def test_unknown_source_type_and_dangling_model_source_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, GOOD.replace("type: camera", "type: webcam")))
    assert "gateway.yaml: sources.0" in str(info.value)
    assert "webcam" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, GOOD.replace("sources: [cam1]", "sources: [cam9]")))
    assert "unknown source(s) ['cam9']" in str(info.value)


def test_camera_needs_exactly_one_input_and_mqtt_url_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            _write(
                tmp_path, GOOD.replace('url: "http://127.0.0.1:8081/stream.mjpg"', "device: 0, path: x.mp4")
            )
        )
    assert "sources.0: Value error, give exactly one of url, device, path" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, GOOD.replace("mqtt://127.0.0.1:1883", "http://broker")))
    assert "gateway.yaml: mqtt.url:" in str(info.value)


def test_password_comes_from_the_named_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(_write(tmp_path, GOOD.replace("password_env: null", "password_env: FE_TEST_PW")))
    monkeypatch.delenv("FE_TEST_PW", raising=False)
    with pytest.raises(ConfigError, match="FE_TEST_PW is not set"):
        config.mqtt.password()
    monkeypatch.setenv("FE_TEST_PW", "s3cret")
    assert config.mqtt.password() == "s3cret"


def test_cli_exits_2_with_the_path_and_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, GOOD.replace("gateway_id: gw-1", "gateway_id: gw/1"))
    assert main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "gateway.yaml: gateway_id: String should match pattern" in err
    assert main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: cannot read config" in capsys.readouterr().err


def test_yaml_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="gateway.yaml: expected a mapping"):
        load_config(_write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(ConfigError, match="gateway.yaml: not valid YAML"):
        load_config(_write(tmp_path, "gateway_id: [unclosed\n"))


def test_the_shipped_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "edge_agent" / "gateway.example.yaml"
    config = load_config(example)
    assert config.gateway_id == "gw-1"
    assert [s.type for s in config.sources] == ["camera", "folder"]
    assert config.models[0].manifest.name == "defect-cnn-1.0.0.manifest.json"
