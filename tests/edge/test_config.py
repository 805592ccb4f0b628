"""Config: YAML errors name the file, the key path and the reason; relative paths resolve to the YAML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from edge_agent.config import CameraSourceConfig, ConfigError, FolderSourceConfig, load_config, parse_config
from edge_agent.main import main
from simulators.fleet import FleetConfig, VirtualGateway, gateway_config
from simulators.parcel_line import ParcelLineConfig

ROOT = Path(__file__).resolve().parents[2]

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
    assert [s.type for s in config.sources] == ["camera", "folder", "camera"]
    assert config.models[0].manifest.name == "defect-cnn-1.0.0.manifest.json"
    parcels = config.models[1].parcels
    assert parcels is not None
    assert parcels.mm_per_px == 1.25
    assert parcels.routes is not None
    assert parcels.routes.route("PX2-000001", 300.0, damaged=False) == "lane_2"


# A parcel line: the bundled detector, with the line's own calibration and sort table.
PARCELS = f"""\
gateway_id: gw-3
line: line-3
state_dir: var/gw-3
sources:
  - {{type: camera, name: belt, url: "http://127.0.0.1:8082/stream.mjpg"}}
models:
  - slot: parcels
    manifest: {ROOT / "domain_models/parcels/artifacts/parcel-detector-1.1.0.manifest.json"}
    sources: [belt]
    parcels:
      mm_per_px: 1.6
      count_line_x: 0.4
      routes:
        default: lane-3
        rules:
          - {{lane: reject, damaged: true}}
          - {{lane: lane-1, prefixes: ["40"]}}
"""


def test_parcel_line_section_is_validated_into_calibration_and_sort_table(tmp_path: Path) -> None:
    slot = load_config(_write(tmp_path, PARCELS)).models[0]
    assert slot.parcels is not None
    assert (slot.parcels.mm_per_px, slot.parcels.count_line_x) == (1.6, 0.4)
    assert slot.parcels.routes is not None
    assert slot.parcels.routes.route("4012345", 300.0, damaged=False) == "lane-1"
    assert slot.parcels.routes.route("4012345", 300.0, damaged=True) == "reject"
    assert slot.parcels.routes.route(None, 300.0, damaged=False) == "lane-3"
    assert slot.settings.parcels == slot.parcels
    # Every value is optional: unset ones fall back to the release's manifest.
    bare = load_config(_write(tmp_path, PARCELS.split("    parcels:")[0] + "    parcels: {mm_per_px: 2}\n"))
    assert bare.models[0].parcels is not None
    assert (bare.models[0].parcels.count_line_x, bare.models[0].parcels.routes) == (None, None)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_routes_may_be_a_file_resolved_against_the_yaml_folder(tmp_path: Path, suffix: str) -> None:
    table = {"default": "lane-9", "rules": [{"lane": "lane-2", "prefixes": ["2"]}]}
    (tmp_path / "lines").mkdir()
    (tmp_path / "lines" / f"routes{suffix}").write_text(
        json.dumps(table) if suffix == ".json" else yaml.safe_dump(table)
    )
    text = PARCELS.split("      routes:")[0] + f"      routes: lines/routes{suffix}\n"
    slot = load_config(_write(tmp_path, text)).models[0]
    assert slot.parcels is not None
    assert slot.parcels.routes is not None
    assert slot.parcels.routes.route("2000", 300.0, damaged=False) == "lane-2"
    assert slot.parcels.routes.route("3000", 300.0, damaged=False) == "lane-9"


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    return str(info.value)


def test_bad_parcel_sections_name_the_key_path_and_reason(tmp_path: Path) -> None:
    err = _error(tmp_path, PARCELS.replace("mm_per_px: 1.6", "mm_per_pix: 1.6"))
    assert "gateway.yaml: models.0.parcels.mm_per_pix: Extra inputs are not permitted" in err
    err = _error(tmp_path, PARCELS.replace("mm_per_px: 1.6", "mm_per_px: 0"))
    assert "gateway.yaml: models.0.parcels.mm_per_px: Input should be greater than 0" in err
    err = _error(tmp_path, PARCELS.replace("count_line_x: 0.4", "count_line_x: 1.5"))
    assert "gateway.yaml: models.0.parcels.count_line_x: Input should be less than 1" in err
    err = _error(tmp_path, PARCELS.replace("{lane: lane-1, prefixes", "{lnae: lane-1, prefixes"))
    assert "gateway.yaml: models.0.parcels.routes.rules.1.lane: Field required" in err
    assert "gateway.yaml: models.0.parcels.routes.rules.1.lnae: Extra inputs are not permitted" in err
    err = _error(tmp_path, PARCELS.replace("default: lane-3", "default: lane 3"))
    assert "gateway.yaml: models.0.parcels.routes.default: String should match pattern" in err


def test_a_bad_routes_file_is_named_with_the_key_path_inside_it(tmp_path: Path) -> None:
    text = PARCELS.split("      routes:")[0] + "      routes: routes.yaml\n"
    err = _error(tmp_path, text)
    assert "gateway.yaml: models.0.parcels.routes: Value error" in err
    assert f"{tmp_path.resolve() / 'routes.yaml'}: cannot read route table" in err
    (tmp_path / "routes.yaml").write_text("default: manual\nrules:\n  - {lane: a, prefix: ['1']}\n")
    err = _error(tmp_path, text)
    assert "routes.yaml: not a valid route table: rules.0.prefix: Extra inputs are not permitted" in err
    (tmp_path / "routes.yaml").write_text("default: [unclosed\n")
    assert "routes.yaml: route table is not valid yaml" in _error(tmp_path, text)


def test_a_parcels_section_on_a_slot_whose_model_is_not_a_parcels_model_is_refused(tmp_path: Path) -> None:
    parcel_model = str(ROOT / "domain_models/parcels/artifacts/parcel-detector-1.1.0.manifest.json")
    defect_model = str(ROOT / "domain_models/defect/artifacts/defect-cnn-1.0.0.manifest.json")
    err = _error(tmp_path, PARCELS.replace(parcel_model, defect_model))
    assert (
        "gateway.yaml: models.0: Value error, parcels: slot parcels runs defect-cnn-1.0.0.manifest.json"
        in err
    )
    assert "a 'defect' model; a parcels section needs a 'parcels' model" in err


def test_the_fleets_parcel_gateway_carries_the_simulated_cameras_calibration(tmp_path: Path) -> None:
    fleet = FleetConfig(count=3, broker_url="mqtt://127.0.0.1:1883", workdir=tmp_path,
                        kinds=("anomaly", "inspection", "parcels"))  # fmt: skip
    gateway = VirtualGateway("gw-3", "line-3", "parcels", 8081, 9103, tmp_path / "gw-3.yaml")
    config = parse_config(yaml.safe_load(yaml.safe_dump(gateway_config(fleet, gateway))), "gw-3.yaml")
    parcels = config.models[0].parcels
    assert parcels is not None
    assert parcels.mm_per_px == ParcelLineConfig(seed=fleet.base_seed).mm_per_px
    assert parcels.routes is not None
    assert parcels.routes.route("PX3-123456", 300.0, damaged=False) == "lane_3"
    assert parcels.routes.route("2123", 300.0, damaged=True) == "reject"
