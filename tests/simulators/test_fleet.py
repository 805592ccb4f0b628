"""Virtual gateways' configs: with a cloud API to upload to, each gateway captures with the token
the demo writes for it, and its config loads as the agent would load it."""

from __future__ import annotations

from pathlib import Path

import yaml

from edge_agent.config import parse_config
from simulators.fleet import FleetConfig, VirtualGateway, gateway_config, gateway_ids, token_path


def test_gateways_upload_captures_with_their_own_token_file_when_the_fleet_has_an_api(tmp_path: Path) -> None:
    fleet = FleetConfig(count=2, first=3, broker_url="mqtt://127.0.0.1:1883", workdir=tmp_path,
                        api_url="http://127.0.0.1:8000")  # fmt: skip
    assert gateway_ids(fleet) == ["gw-3", "gw-4"]
    gateway = VirtualGateway("gw-3", "line-3", "inspection", 8081, 9103, tmp_path / "gw-3.yaml")
    config = parse_config(yaml.safe_load(yaml.safe_dump(gateway_config(fleet, gateway))), "gw-3.yaml")
    assert config.captures.enabled
    assert config.captures.api_url == "http://127.0.0.1:8000"
    assert (
        config.captures.token_file
        == token_path(fleet, "gw-3").resolve()
        == (tmp_path / "gw-3" / "api-token").resolve()
    )


def test_without_an_api_the_fleets_gateways_do_not_capture(tmp_path: Path) -> None:
    fleet = FleetConfig(count=1, broker_url="mqtt://127.0.0.1:1883", workdir=tmp_path)
    gateway = VirtualGateway("gw-1", "line-1", "inspection", 8081, 9101, tmp_path / "gw-1.yaml")
    assert "captures" not in gateway_config(fleet, gateway)
