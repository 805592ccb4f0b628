"""The captures section: the token comes from a private file or the environment, never the YAML,
and every mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.captures.config import CaptureConfig
from edge_agent.config import ConfigError, parse_config

BASE = {"gateway_id": "gw-1", "line": "line-1", "state_dir": "state"}


def test_the_token_is_read_from_a_private_file(tmp_path: Path) -> None:
    token = tmp_path / "api-token"
    token.write_text("fe_secret\n")
    token.chmod(0o600)
    config = parse_config({**BASE, "captures": {"enabled": True, "api_url": "http://cloud:8000/", "token_file": "api-token"}},
                          "gw.yaml", base_dir=tmp_path)  # fmt: skip
    assert config.captures.token() == "fe_secret"
    assert config.captures.api_url == "http://cloud:8000"
    assert config.captures.store_dir(config.state_dir) == tmp_path / "state" / "captures"


def test_a_token_file_others_can_read_is_refused_naming_its_mode(tmp_path: Path) -> None:
    token = tmp_path / "api-token"
    token.write_text("fe_secret")
    token.chmod(0o644)
    config = CaptureConfig(enabled=True, api_url="http://cloud:8000", token_file=token)
    with pytest.raises(ConfigError, match=r"is readable by others \(mode 644\); chmod 600 it"):
        config.token()


def test_without_a_file_the_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = CaptureConfig(enabled=True, api_url="http://cloud:8000", token_env="GW_TOKEN")
    monkeypatch.delenv("GW_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="set the environment variable GW_TOKEN or captures.token_file"):
        config.token()
    monkeypatch.setenv("GW_TOKEN", "fe_from_env")
    assert config.token() == "fe_from_env"


@pytest.mark.parametrize(
    ("captures", "message"),
    [
        ({"enabled": True}, "gw.yaml: captures: Value error, api_url: the cloud API's URL is needed"),
        (
            {"api_url": "ftp://cloud"},
            "gw.yaml: captures.api_url: Value error, 'ftp://cloud' must look like http(s)://host[:port]",
        ),
        ({"token": "fe_in_yaml"}, "gw.yaml: captures.token: Extra inputs are not permitted"),
        (
            {"on_drift": {"sample_rate": 2}},
            "gw.yaml: captures.on_drift.sample_rate: Input should be less than or equal to 1",
        ),
    ],
)
def test_mistakes_name_their_key(captures: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**BASE, "captures": captures}, "gw.yaml")
    assert message in str(caught.value)


def test_an_agent_with_captures_on_and_no_token_does_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_agent.agent import Agent
    from protocol.topics import TopicSpace
    from tests.support.agent import agent_config, build_model

    monkeypatch.delenv("FACTORY_GATEWAY_TOKEN", raising=False)
    config = agent_config(tmp_path, ("127.0.0.1", 1), TopicSpace("never/v1"), build_model(tmp_path / "model"),
                          tmp_path, captures={"enabled": True, "api_url": "http://127.0.0.1:1"})  # fmt: skip
    agent = Agent(config)
    with pytest.raises(ConfigError, match="set the environment variable FACTORY_GATEWAY_TOKEN"):
        agent.start()
    assert not (tmp_path / "state" / "outbox.db").exists()  # nothing started before the refusal
