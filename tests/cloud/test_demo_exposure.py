"""``factory-cloud api`` keeps the demo profile on the machine's loopback unless told otherwise."""

from __future__ import annotations

import pytest

from cloud import cli
from cloud.config import CloudSettings

PRODUCTION_ENV = {
    "FACTORY_PROFILE": "production",
    "FACTORY_BROKER_URL": "mqtts://broker.plant:8883",
    "FACTORY_BROKER_USERNAME": "cloud",
    "FACTORY_BROKER_PASSWORD": "a-real-broker-password",
}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[CloudSettings]:
    """The settings the API would have been served with (nothing is served)."""
    calls: list[CloudSettings] = []

    def run_api(settings: CloudSettings) -> int:
        calls.append(settings)
        return 0

    monkeypatch.setattr(cli, "_run_api", run_api)
    return calls


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "cloud.plant.example"])  # noqa: S104
def test_the_demo_profile_refuses_an_address_other_machines_reach(
    host: str, served: list[CloudSettings], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["api", "--host", host], environ={}) == 2
    assert served == []
    err = capsys.readouterr().err
    assert f"refusing to serve the demo profile on {host}" in err
    assert "--demo-on-network" in err


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_the_demo_profile_serves_on_loopback(host: str, served: list[CloudSettings]) -> None:
    assert cli.main(["api", "--host", host], environ={}) == 0
    assert [s.api_host for s in served] == [host]


def test_the_demo_profile_goes_on_the_network_when_told_explicitly(served: list[CloudSettings]) -> None:
    assert cli.main(["api", "--host", "0.0.0.0", "--demo-on-network"], environ={}) == 0  # noqa: S104
    assert [(s.profile, s.api_host) for s in served] == [("demo", "0.0.0.0")]  # noqa: S104


def test_the_production_profile_binds_where_it_is_told(served: list[CloudSettings]) -> None:
    assert cli.main(["api", "--host", "0.0.0.0"], environ=PRODUCTION_ENV) == 0  # noqa: S104
    assert [(s.profile, s.api_host) for s in served] == [("production", "0.0.0.0")]  # noqa: S104
