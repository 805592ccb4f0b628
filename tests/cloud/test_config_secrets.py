"""A refused setting never shows a secret: not in the error, not on the terminal, not in the log."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from cloud import cli
from cloud.config import settings_from_environment

BROKER_SECRET = "brk-S3cret-7f1e"  # noqa: S105 - what must never be shown
DB_SECRET = "db-S3cret-91ac"  # noqa: S105 - what must never be shown
# Production with a plain-text broker: refused, while the environment holds both secrets.
REFUSED = {
    "FACTORY_PROFILE": "production",
    "FACTORY_BROKER_URL": "mqtt://broker.plant:1883",
    "FACTORY_BROKER_USERNAME": "cloud",
    "FACTORY_BROKER_PASSWORD": BROKER_SECRET,
    "FACTORY_DB_URL": f"postgresql+psycopg://factory:{DB_SECRET}@db.plant/factory",
}


def test_a_settings_error_does_not_echo_the_secrets_it_was_given() -> None:
    with pytest.raises(ValidationError) as refused:
        settings_from_environment(REFUSED)
    message = str(refused.value)
    assert "broker_url must use mqtts:// (TLS)" in message
    assert BROKER_SECRET not in message
    assert DB_SECRET not in message


def test_a_broker_url_with_a_password_in_it_is_refused_without_showing_it() -> None:
    with pytest.raises(ValidationError) as refused:
        settings_from_environment({"FACTORY_BROKER_URL": f"mqtt://cloud:{BROKER_SECRET}@broker.plant:1883"})
    message = str(refused.value)
    assert "broker URL 'mqtt://cloud:***@broker.plant:1883': pass credentials as broker_username" in message
    assert BROKER_SECRET not in message


def test_factory_cloud_reports_refused_settings_without_the_secrets(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert cli.main(["ingest"], environ=REFUSED) == 2
    shown = capsys.readouterr()
    assert "invalid settings" in shown.err
    for secret in (BROKER_SECRET, DB_SECRET):
        assert secret not in shown.err + shown.out + caplog.text
