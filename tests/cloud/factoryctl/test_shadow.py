"""factoryctl shadow: an admin starts a challenger on a line's gateways, status prints each gateway
slot's evidence, stop drops it; a refusal prints the API's reason and exits with its code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.factoryctl import cli as factoryctl
from tests.support.console_live import BEFORE, Live
from tests.support.shadow_evidence import send_windows, shadowing


def ctl(live: Live, tmp_path: Path, who: str, *argv: str) -> int:
    token = live.token(who)["Authorization"].removeprefix("Bearer ")
    env = {
        "FACTORYCTL_CONFIG": str(tmp_path / "cfg" / "config.json"),
        "FACTORY_API_URL": "http://testserver",
        "FACTORY_API_TOKEN": token,
    }
    return factoryctl.main(list(argv), environ=env, client=live.client)


def test_start_status_and_stop_a_challenger(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live.report("gw-a", "1.0", 0, BEFORE, "committed")
    start = ("shadow", "start", "--model", "defect-cnn", "--version", "1.1", "--line", "line-1")
    assert ctl(live, tmp_path, "otto", *start) == 3
    assert "admin" in capsys.readouterr().err
    assert ctl(live, tmp_path, "ada", *start) == 0
    assert capsys.readouterr().out.splitlines()[1].split() == ["gw-a", "main"]
    assert live.publisher.published[-1].challengers["main"].manifest.version == "1.1"

    assert ctl(live, tmp_path, "vera", "shadow", "status", "--line", "line-1") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:5] == ["GATEWAY_ID", "SLOT", "CHAMPION", "CHALLENGER", "PHASE"]
    assert table[1].split()[:7] == ["gw-a", "main", "defect-cnn", "1.0", "defect-cnn", "1.1", "-"]
    assert ctl(live, tmp_path, "vera", "--json", "shadow", "status", "--version", "1.2") == 0
    assert json.loads(capsys.readouterr().out) == []

    assert ctl(live, tmp_path, "ada", "shadow", "stop", "--slot", "main", "--gateway", "gw-a") == 0
    capsys.readouterr()
    assert live.publisher.published[-1].challengers == {}
    assert ctl(live, tmp_path, "ada", "shadow", "stop", "--slot", "main", "--gateway", "gw-a") == 4
    assert "no targeted gateway has a challenger in slot main" in capsys.readouterr().err
    assert ctl(live, tmp_path, "ada", "shadow", "start", "--model", "defect-cnn", "--version", "7") == 4
    assert "is not in the registry" in capsys.readouterr().err


def test_a_gated_promotion_is_refused_with_the_figures_and_exits_non_zero(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live.report("gw-a", "1.0", 0, BEFORE, "committed")
    assert ctl(live, tmp_path, "ada", "shadow", "start", "--model", "defect-cnn", "--version", "1.1",
               "--line", "line-1") == 0  # fmt: skip
    capsys.readouterr()
    promote = ("rollouts", "create", "--model", "defect-cnn", "--version", "1.1", "--line", "line-1")
    assert ctl(live, tmp_path, "ada", *promote, "--gate-min-frames", "many") == 2
    assert "--gate-min-frames: expected a whole number, got 'many'" in capsys.readouterr().err
    # Nothing was compared yet: the gate on frames (and the flag shift, off here) says so.
    code = ctl(live, tmp_path, "ada", *promote, "--gate-min-frames", "50", "--gate-max-flag-shift", "off")
    assert code != 0
    err = capsys.readouterr().err
    assert "refused by its shadow gates: gw-a: min_frames 0 (needs >= 50)" in err
    assert "max_flag_rate_shift" not in err


def test_models_show_prints_the_lineage_through_shadow_evidence_and_gated_rollouts(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    champion, challenger = shadowing(live)
    send_windows(
        live, champion, challenger, 6, {("good", "good"): 93, ("defect", "defect"): 5, ("good", "defect"): 2}
    )
    promote = ("rollouts", "create", "--model", "defect-cnn", "--version", "1.1", "--gateway", "gw-a",
               "--waves", "100%", "--shadow-gates")  # fmt: skip
    assert ctl(live, tmp_path, "ada", *promote) == 0
    capsys.readouterr()
    assert ctl(live, tmp_path, "vera", "models", "show", "defect-cnn", "1.1") == 0
    out = capsys.readouterr().out
    assert "made: dataset unknown (pushed) -> artifact " in out
    assert (
        "shadow: gw-a slot main beside defect-cnn 1.0 (shadowing): 600 compared, 12 skipped, "
        "agreement 0.980, flags 5.0% -> 7.0%, p95 20.0 -> 30.0 ms"
    ) in out
    [rollout] = [line for line in out.splitlines() if line.startswith("rollout: ")]
    assert rollout.endswith("running (slot main, gated on its shadow run) by user:ada"), rollout
