"""The demo's alert rules: one per line, plus a drift rule per camera line, made through the real API,
never duplicated by a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud.api import create_app
from cloud.config import CloudSettings
from simulators.demo_alerts import ApiCall, demo_rules, seed_alert_rules
from simulators.fleet import VirtualGateway
from tests.support.testclient import TestClient
from tests.support.tokens import bearer, mint_tokens


def _gateway(number: int, line: str, kind: str) -> VirtualGateway:
    return VirtualGateway(f"gw-{number}", line, kind, 0, 0, Path(f"gw-{number}.yaml"))


# What `factory-sim demo` runs: anomaly model + notes on line-1, the CNN on line-2, parcels on line-3.
DEMO = [
    _gateway(1, "line-1", "anomaly"),
    _gateway(2, "line-2", "inspection"),
    _gateway(3, "line-3", "parcels"),
]


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiCall]:
    """The API on a fresh database, called as the demo calls it: with an admin token."""
    admin = bearer(mint_tokens(db_url)["admin"])
    with TestClient(
        create_app(CloudSettings(db_url=db_url, artifact_dir=str(tmp_path / "artifacts")))
    ) as client:

        def call(method: str, path: str, body: dict[str, Any] | None) -> Any:
            answer = client.request(method, f"/api/v1{path}", json=body, headers=admin)
            assert answer.is_success, f"{method} {path}: {answer.status_code} {answer.text}"
            return answer.json()

        yield call


def _rules(api: ApiCall) -> list[tuple[Any, ...]]:
    keys = ("line", "kind", "threshold", "window_s", "min_results", "enabled")
    return [tuple(rule[k] for k in keys) for rule in api("GET", "/alert-rules", None)]


def test_each_demo_line_gets_one_rule_that_fits_what_it_makes(api: ApiCall) -> None:
    """Camera lines: a defect rate well above the 15 % the simulators inject; the parcel line has no
    defect rate, so a silent gateway; each camera line also alerts on confirmed drift."""
    made = seed_alert_rules(api, DEMO)
    assert made == [
        "line-1: defect_rate above 25",
        "line-2: defect_rate above 25",
        "line-3: gateway_offline above 120",
        "line-1: model_drift when confirmed",
        "line-2: model_drift when confirmed",
    ]
    assert sorted(_rules(api)) == [
        ("line-1", "defect_rate", 25.0, 600.0, 200, True),
        ("line-1", "model_drift", 2.0, None, 1, True),
        ("line-2", "defect_rate", 25.0, 600.0, 200, True),
        ("line-2", "model_drift", 2.0, None, 1, True),
        ("line-3", "gateway_offline", 120.0, None, 1, True),
    ]


def test_a_restart_adds_nothing_and_keeps_an_admins_edit(api: ApiCall) -> None:
    seed_alert_rules(api, DEMO)
    first = api("GET", "/alert-rules", None)[0]
    api("PATCH", f"/alert-rules/{first['id']}", {"threshold": 30})
    before = _rules(api)
    assert seed_alert_rules(api, DEMO) == []
    assert _rules(api) == before
    assert before[0][:3] == ("line-1", "defect_rate", 30.0)


def test_a_line_watched_by_a_camera_and_a_parcel_gateway_watches_its_defect_rate() -> None:
    for gateways in ([_gateway(1, "line-1", "parcels"), _gateway(2, "line-1", "inspection")],
                     [_gateway(2, "line-1", "inspection"), _gateway(1, "line-1", "parcels")]):  # fmt: skip
        assert [rule["kind"] for rule in demo_rules(gateways).values()] == ["defect_rate"]
