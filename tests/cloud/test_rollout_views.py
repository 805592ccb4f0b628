"""How rollouts read to a person: factoryctl's refusals one line per problem, the slot optional on
the command line and in the console form, and the health gates signed and worded as they judge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.console.rollout_view import gate_cell
from cloud.factoryctl import cli as factoryctl
from cloud.ota.health import gate_values
from cloud.ota.schemas import Thresholds
from protocol.ota import SlotHealth
from protocol.topics import TopicSpace
from tests.cloud.console_live_helpers import FULL_FORM, ORIGIN, Live, login, running_live
from tests.cloud.rollout_truth_helpers import Yard, loaded, running_yard


@pytest.fixture
def yard(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Yard]:
    with running_yard(db_url, tmp_path, topic_space) as running:
        running.birth("gw-1", loaded("defect-cnn", "defect", "defect"))
        yield running


def _ctl(yard: Yard, tmp_path: Path, *argv: str) -> int:
    env = {
        "FACTORYCTL_CONFIG": str(tmp_path / "cfg" / "config.json"),
        "FACTORY_API_URL": "http://testserver",
        "FACTORY_API_TOKEN": yard.admin["Authorization"].removeprefix("Bearer "),
    }
    return factoryctl.main(list(argv), environ=env, client=yard.client)


CREATE = ("rollouts", "create", "--model", "defect-cnn", "--version", "1.1", "--gateway", "gw-1")


def test_factoryctl_prints_each_validation_problem_on_a_line_of_its_own(
    yard: Yard, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault: a 422 validation list was printed as a raw Python list. Promise: one readable line
    per problem, naming the field."""
    assert _ctl(yard, tmp_path, *CREATE, "--bake", "-5", "--max-error-rate", "2") == 1
    err = capsys.readouterr().err
    # Named by the flag the user typed, with its unit, not by the API's field.
    assert "\n  --bake: Input should be greater than or equal to 0 (seconds)\n" in err
    assert "\n  --max-error-rate: Input should be less than or equal to 1 (a fraction: 0.05 = 5%)" in err
    assert "[{" not in err
    assert "'loc'" not in err
    assert _ctl(yard, tmp_path, *CREATE, "--waves", "50%,10%") == 1
    err = capsys.readouterr().err
    assert "HTTP 422: --waves: wave '10%' in '50%,10%' is smaller than an earlier percentage" in err
    assert "\n" not in err.strip()  # a single problem stays on the one line


def test_factoryctl_create_without_slot_takes_the_slot_running_the_model(
    yard: Yard, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault: leaving out --slot sent 'main', which the demo gateways lack. Promise: the slot
    running the model is chosen and shown."""
    assert _ctl(yard, tmp_path, *CREATE, "--waves", "100%") == 0
    assert "-> slot defect  state RUNNING" in capsys.readouterr().out


@pytest.fixture
def live(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Live]:
    with running_live(db_url, tmp_path, topic_space) as running:
        yield running


def test_console_form_without_slot_round_trips_to_the_chosen_slot(live: Live) -> None:
    """Promise: the form may leave the slot empty; the rollout takes the slot running the model."""
    login(live.client, "ada")
    answer = live.client.post(
        "/rollouts", data={**FULL_FORM, "slot": ""}, headers=ORIGIN, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    rollout = answer.headers["location"].removeprefix("/rollouts/")
    got = live.client.get(f"/api/v1/rollouts/{rollout}", headers=live.token("vera")).json()
    assert (got["slot"], sorted(got["gateways"])) == ("main", ["gw-a", "gw-b"])


def test_health_cells_read_as_a_minimum_and_signed_changes() -> None:
    """Fault: "Inferences 111 of 1" read like a fraction, and shifts were shown unsigned. Promise:
    a minimum reads as one, changes are now minus before in points, and the verdict is unchanged."""
    t = Thresholds(max_defect_rate_shift=0.05, max_confidence_drop=0.1, min_inferences=0)
    health = SlotHealth(inferences=111, errors=0, defect_rate=0.072, mean_confidence=0.95).model_dump()
    before = {"defect_rate": 0.083, "mean_confidence": 0.90}
    cells = {g["gate"]: gate_cell(g) for g in gate_values(health, before, t)}
    assert cells["min_inferences"]["text"] == "111, at least 1"
    assert cells["max_defect_rate_shift"]["text"] == "-1.1 pts: now 7.2%, before 8.3% · ±5.0 pts"
    assert cells["max_defect_rate_shift"]["cls"] == "ok"
    assert (
        cells["max_confidence_drop"]["text"] == "+5.0 pts: now 95.0%, before 90.0% · fall of at most 10.0 pts"
    )
    assert cells["max_confidence_drop"]["cls"] == "ok"  # a rise in confidence is no drop

    worse = {**health, "defect_rate": 0.15, "mean_confidence": 0.7}
    cells = {g["gate"]: gate_cell(g) for g in gate_values(worse, before, t)}
    assert cells["max_defect_rate_shift"]["text"].startswith("+6.7 pts: now 15.0%, before 8.3%")
    assert cells["max_defect_rate_shift"]["cls"] == "bad"
    assert cells["max_confidence_drop"]["text"].startswith("-20.0 pts: now 70.0%")
    assert cells["max_confidence_drop"]["cls"] == "bad"
    off = {g["gate"]: gate_cell(g) for g in gate_values(worse, before, Thresholds())}
    assert off["max_defect_rate_shift"]["text"] == "+6.7 pts: now 15.0%, before 8.3% (no limit)"
