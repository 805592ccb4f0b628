"""``factoryctl rollouts create``: its help gives every threshold its unit and the API's default, its
refusals name the flags typed, one line per problem, and the slot is optional."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.factoryctl import cli as factoryctl
from cloud.ota.schemas import RolloutCreate, Thresholds
from protocol.topics import TopicSpace
from tests.support.releases import RecordingPublisher
from tests.support.testclient import TestClient
from tests.support.tokens import mint_tokens
from tests.support.yard import Yard, loaded, running_yard


@pytest.fixture
def yard(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Yard]:
    with running_yard(db_url, tmp_path, topic_space) as running:
        running.birth("gw-1", loaded("defect-cnn", "defect", "defect"))
        yield running


CREATE = ("rollouts", "create", "--model", "defect-cnn", "--version", "1.1", "--gateway", "gw-1")


def test_factoryctl_prints_each_validation_problem_on_a_line_of_its_own(
    yard: Yard, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault: a 422 validation list was printed as a raw Python list. Promise: one readable line
    per problem, naming the field."""
    assert yard.ctl(*CREATE, "--bake", "-5", "--max-error-rate", "2") == 1
    err = capsys.readouterr().err
    # Named by the flag the user typed, with its unit, not by the API's field.
    assert "\n  --bake: Input should be greater than or equal to 0 (seconds)\n" in err
    assert "\n  --max-error-rate: Input should be less than or equal to 1 (a fraction: 0.05 = 5%)" in err
    assert "[{" not in err
    assert "'loc'" not in err
    assert yard.ctl(*CREATE, "--waves", "50%,10%") == 1
    err = capsys.readouterr().err
    assert "HTTP 422: --waves: wave '10%' in '50%,10%' is smaller than an earlier percentage" in err
    assert "\n" not in err.strip()  # a single problem stays on the one line


def test_factoryctl_create_without_slot_takes_the_slot_running_the_model(
    yard: Yard, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault: leaving out --slot sent 'main', which the demo gateways lack. Promise: the slot
    running the model is chosen and shown."""
    assert yard.ctl(*CREATE, "--waves", "100%") == 0
    assert "-> slot defect  state RUNNING" in capsys.readouterr().out


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
    assert (
        "0.01 = 1 percentage point, judged only beyond sampling noise; 'off': no limit (default: 0.01)"
        in text
    )
    assert "--min-defect-rate-parts N" in text
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
    assert args.min_defect_rate_parts == api.min_defect_rate_parts
    assert args.install_timeout == api.install_timeout_s
    assert args.bake == request.bake_s
    assert args.waves == request.waves


def test_the_defect_rate_gate_is_switched_off_by_name_and_a_typo_is_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The gate is on by default, so there must be a way to say "no limit" (the API's null)."""
    create = ["rollouts", "create", "--model", "m", "--version", "1", "--max-defect-rate-shift"]
    assert factoryctl.build_parser().parse_args([*create, "off"]).max_defect_rate_shift is None
    assert factoryctl.build_parser().parse_args([*create, "0.03"]).max_defect_rate_shift == 0.03
    with pytest.raises(SystemExit):
        factoryctl.build_parser().parse_args([*create, "of"])
    said = capsys.readouterr().err
    assert "--max-defect-rate-shift: expected a fraction such as 0.01, or 'off'; got 'of'" in said


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
