"""Units and words a new user tripped on: factoryctl rollout flags and their errors, health
reasons with units, the alert-rule form's help per kind, and the gateway page's long lists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.console.render import milliseconds, significant
from cloud.factoryctl import cli as factoryctl
from cloud.factoryctl.output import readable_detail
from cloud.ota.health import health_problem
from cloud.ota.schemas import RolloutCreate, Thresholds
from protocol.topics import Channel
from tests.cloud.ota_helpers import RecordingPublisher, mint_tokens
from tests.cloud.test_console import login
from tests.cloud.test_console_newuser import Console, console, event  # noqa: F401 - console: a fixture
from tests.cloud.testclient import TestClient


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit):
        factoryctl.build_parser().parse_args([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines: compare words


def test_rollout_create_help_gives_every_threshold_its_unit_and_the_apis_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _help(capsys, "rollouts", "create")
    assert "--bake SECONDS seconds each wave must stay healthy (default: 60 s)" in text
    assert "--max-error-rate FRACTION" in text
    assert "a fraction (0-1): 0.05 = 5% (default: 0.05)" in text
    assert "--max-failure-ratio FRACTION" in text
    assert "0.1 = 10% (default: 0, none may fail)" in text
    assert "--max-p95-ms MS largest p95 inference latency in milliseconds" in text
    assert "--max-defect-rate-shift FRACTION" in text
    assert "0.02 = 2 percentage points (default: no limit)" in text
    assert "--install-timeout SECONDS" in text
    assert "(default: 600 s)" in text
    # The flags' defaults are the API's, so leaving a flag out means the same as leaving the field out.
    args = factoryctl.build_parser().parse_args(["rollouts", "create", "--model", "m", "--version", "1"])
    api, request = (
        Thresholds(),
        RolloutCreate.model_validate({"model_name": "m", "version": "1", "target": {}}),
    )
    assert args.max_error_rate == api.max_error_rate
    assert args.max_failure_ratio == api.max_failure_ratio
    assert args.max_p95_ms == api.max_p95_latency_ms
    assert args.max_defect_rate_shift == api.max_defect_rate_shift
    assert args.install_timeout == api.install_timeout_s
    assert args.bake == request.bake_s
    assert args.waves == request.waves


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    tokens = mint_tokens(db_url)
    settings = CloudSettings(db_url=db_url, artifact_dir=str(tmp_path / "artifacts"))
    env = {
        "FACTORYCTL_CONFIG": str(tmp_path / "cfg" / "config.json"),
        "FACTORY_API_URL": "http://testserver",
        "FACTORY_API_TOKEN": tokens["admin"],
    }
    with TestClient(create_app(settings, RecordingPublisher())) as client:
        yield client, env


def test_a_refused_rollout_names_the_flags_typed_with_their_units(
    api: tuple[TestClient, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    client, env = api
    argv = ["rollouts", "create", "--model", "m", "--version", "1", "--gateway", "gw-1"]
    bad = ["--max-error-rate", "5", "--bake", "-1", "--max-p95-ms", "0"]
    assert factoryctl.main([*argv, *bad], environ=env, client=client) == 1
    err = capsys.readouterr().err
    assert "--max-error-rate: Input should be less than or equal to 1 (a fraction: 0.05 = 5%)" in err
    assert "--bake: Input should be greater than or equal to 0 (seconds)" in err
    assert "--max-p95-ms: Input should be greater than 0 (milliseconds)" in err
    assert "thresholds." not in err
    assert "bake_s" not in err


def test_other_requests_keep_the_apis_field_names() -> None:
    detail = [
        {"loc": ["body", "thresholds", "max_error_rate"], "msg": "Input should be less than or equal to 1"}
    ]
    assert readable_detail(detail) == "thresholds.max_error_rate: Input should be less than or equal to 1"
    query = [{"loc": ["query", "limit"], "msg": "too big"}]
    assert readable_detail(query, {"thresholds.max_error_rate": ("--x", "")}) == "query.limit: too big"


def test_health_reasons_and_console_limits_keep_units_and_small_values() -> None:
    t = Thresholds(max_error_rate=None, max_p95_latency_ms=0.01)
    assert health_problem({"inferences": 10, "errors": 0, "p95_latency_ms": 2.1}, None, t) == (
        "p95 latency 2.1 ms > max 0.01 ms"
    )
    shift = Thresholds(max_error_rate=None, max_defect_rate_shift=0.02)
    said = health_problem({"inferences": 10, "defect_rate": 0.2}, {"defect_rate": 0.1}, shift)
    assert said == "defect rate 0.200 vs 0.100 before the update (shift > max 0.02)"
    assert milliseconds(0.01) == "0.01 ms"
    assert milliseconds(2) == "2 ms"
    assert milliseconds(2.14159) == "2.14 ms"
    assert milliseconds(1234.5) == "1234 ms"
    assert milliseconds(None) == "-"
    assert significant(0.0004) == "0.0004"


def test_rule_form_help_follows_the_kind_and_numbers_get_a_keypad(console: Console) -> None:  # noqa: F811
    login(console.client, "ada")
    page = console.client.get("/alerts").text
    form = page[page.index('id="create-rule"') :]
    hints = dict(
        re.findall(r'<span class="kind-hint" data-kind="([a-z_]+)" data-unit="[^"]*">([^<]+)</span>', form)
    )
    assert hints == {
        "defect_rate": "Defect rate in percent: 10 means 10%, not 0.1.",
        "gateway_offline": "Gateway offline in seconds: 300 means 5 minutes of silence.",
        "outbox_backlog": "Outbox backlog in items (results and events) waiting to be sent.",
    }
    assert "items (results and events) waiting in a gateway&#39;s outbox" in form
    assert "items (results)" not in form
    assert '<select name="kind" id="rule-kind">' in form
    assert '<span id="threshold-unit">' in form
    for field, mode in (("threshold", "decimal"), ("window_s", "decimal"), ("min_results", "numeric")):
        assert re.search(rf'<input name="{field}"[^>]* inputmode="{mode}"', form), field
    script = console.client.get("/console/static/console.js")
    assert script.status_code == 200
    assert 'getElementById("rule-kind")' in script.text
    css = console.client.get("/console/static/console.css").text
    assert ".kind-hint[hidden] { display: none; }" in css


def _outside_media(css: str) -> str:
    return re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", css)


def test_gateway_page_folds_old_ota_steps_and_says_when_all_events_are_ota(console: Console) -> None:  # noqa: F811
    now = datetime.now(UTC)
    steps = [event("ota", f"ota step {i}", now - timedelta(seconds=i)) for i in range(25)]
    console.ingest("gw-a", Channel.EVENTS, *steps)
    login(console.client, "vera")
    page = console.client.get("/gateways/gw-a").text
    shown = console.table("/gateways/gw-a", "ota-history")
    older = console.table("/gateways/gw-a", "ota-history-older")
    assert shown.count("<tr>") == 21  # the header and the newest 20
    assert "ota step 0<" in shown
    assert "ota step 19<" in shown
    assert "ota step 20<" not in shown
    assert older.count("<tr>") == 6
    assert "ota step 24<" in older
    assert "<summary>Show all 25 OTA steps (5 older)</summary>" in page
    assert "No events other than OTA steps (see OTA history)." in page
    assert "No events reported yet." not in page
    # Another gateway that reported nothing still says so.
    assert "No events reported yet." in console.client.get("/gateways/gw-b").text
    # The Gateways list's update-state column keeps a width on every screen, not only phones.
    css = console.client.get("/console/static/console.css").text
    assert re.search(r"td\.slot-state \{ min-width: \d+rem; \}", _outside_media(css))
