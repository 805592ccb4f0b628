"""``/docs`` (with ``/redoc`` and ``/openapi.json``) and ``/metrics`` follow their settings: on in
the demo profile, off in production, either way when set."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.access import access_api

PAGES = {"docs": ("/docs", "/redoc", "/openapi.json"), "metrics": ("/metrics",)}
PRODUCTION = {
    "profile": "production",
    "broker_url": "mqtts://broker.plant:8883",
    "broker_username": "cloud",
    "broker_password": "a-real-broker-password",
}


@pytest.mark.parametrize(
    ("settings", "served"),
    [
        ({}, {"docs", "metrics"}),
        (PRODUCTION, set()),
        ({**PRODUCTION, "api_docs": True}, {"docs"}),
        ({**PRODUCTION, "api_metrics": True}, {"metrics"}),
        ({"api_docs": False, "api_metrics": False}, set()),
    ],
)
def test_docs_and_metrics_are_served_as_the_settings_say(
    db_url: str, tmp_path: Path, settings: dict[str, object], served: set[str]
) -> None:
    with access_api(db_url, tmp_path, **settings) as access:
        for what, paths in PAGES.items():
            for path in paths:
                status = access.client.get(path).status_code
                assert status == (200 if what in served else 404), (settings, path, status)
        assert access.client.get("/healthz").status_code == 200
