"""Settings of the cloud processes: flag over environment over default, unknown and bad values refused."""

from __future__ import annotations

import pytest

from cloud.config import CloudSettings, settings_from_environment


def test_settings_precedence_flag_over_env_over_default() -> None:
    env = {"FACTORY_DB_URL": "sqlite:///env.db", "FACTORY_INGEST_BATCH_SIZE": "7", "FACTORY_SHARE_GROUP": ""}
    settings = settings_from_environment(env, {"db_url": "sqlite:///flag.db"})
    assert settings.db_url == "sqlite:///flag.db"
    assert settings.ingest_batch_size == 7
    assert settings.share_group is None
    assert settings.api_port == 8000


def test_settings_reject_unknown_and_bad_values() -> None:
    with pytest.raises(ValueError, match="extra"):
        CloudSettings.model_validate({"db_ur": "x"})
    with pytest.raises(ValueError, match="scheme must be mqtt"):
        CloudSettings(broker_url="http://broker")
    with pytest.raises(ValueError, match="production profile: broker_username"):
        CloudSettings(
            profile="production", broker_url="mqtts://b", broker_username="cloud", broker_password="changeme"
        )
    with pytest.raises(ValueError, match="must use mqtts"):
        CloudSettings(profile="production", broker_username="cloud", broker_password="a-real-long-secret")
    ok = CloudSettings(
        profile="production", broker_url="mqtts://b", broker_username="c", broker_password="s3cr3t-x"
    )
    assert ok.broker.port == 8883
    assert ok.broker.tls


def test_the_demo_control_url_is_a_demo_profile_http_url() -> None:
    assert CloudSettings().demo_control_url is None
    assert CloudSettings(demo_control_url="").demo_control_url is None
    given = settings_from_environment({"FACTORY_DEMO_CONTROL_URL": "http://127.0.0.1:4711/"})
    assert given.demo_control_url == "http://127.0.0.1:4711"
    with pytest.raises(ValueError, match="demo control URL 'mqtt://x' must be http://HOST:PORT"):
        CloudSettings(demo_control_url="mqtt://x")
    with pytest.raises(ValueError, match="demo_control_url is a demo-profile setting"):
        CloudSettings(
            profile="production", broker_url="mqtts://b", broker_username="cloud",
            broker_password="a-real-long-secret", demo_control_url="http://127.0.0.1:4711",
        )  # fmt: skip
