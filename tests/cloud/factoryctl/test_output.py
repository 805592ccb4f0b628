"""What factoryctl prints: upload progress, a slot's state in words, ``--watch`` into a pipe."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import httpx
import pytest

from cloud.factoryctl import cli as factoryctl
from cloud.factoryctl.commands import _progress, slot_summary
from cloud.factoryctl.output import Context, readable_detail


def test_upload_progress_keeps_the_whole_name_and_ends_its_line() -> None:
    err = io.StringIO()
    ctx = Context(
        args=argparse.Namespace(json=False),
        env={},
        config_path=Path("c"),
        url="u",
        out=io.StringIO(),
        err=err,
    )
    show = _progress(ctx)
    name = "defect-patchcore-int8-1.2.0.calibration.json"
    show(name, 5, 10)
    assert err.getvalue().endswith(" 50%")  # still on the same line while it runs
    show(name, 10, 10)
    last = err.getvalue().split("\r")[-1]
    assert last.startswith(name + " [")
    assert last.endswith("100%\n")


def test_slot_summary_says_the_old_model_still_serves_after_a_refusal() -> None:
    ref = {"name": "defect-cnn", "sha256": "ab" * 32}
    refused = {
        "active": {**ref, "version": "1.0.0"},
        "phase": "failed",
        "target": {**ref, "version": "1.1.0"},
        "error": "signature: key 2b1d is not trusted",
    }
    assert (
        slot_summary(refused)
        == "running 1.0.0 · last update 1.1.0 refused: signature: key 2b1d is not trusted"
    )
    rolled = {**refused, "phase": "rolled_back", "error": "health: error rate 0.4 > 0.05"}
    assert slot_summary(rolled) == "running 1.0.0 · update 1.1.0 rolled back: health: error rate 0.4 > 0.05"
    fine = {
        "active": {**ref, "version": "1.1.0"},
        "previous": {**ref, "version": "1.0.0"},
        "phase": "committed",
    }
    assert slot_summary(fine) == "running 1.1.0 (previous 1.0.0)"
    busy = {
        "active": {**ref, "version": "1.0.0"},
        "phase": "smoke_testing",
        "target": {**ref, "version": "1.1.0"},
    }
    assert slot_summary(busy) == "running 1.0.0 · installing 1.1.0: smoke testing"


def _rollout(state: str, status: str, events: int) -> dict[str, object]:
    return {
        "id": "r1",
        "model_name": "defect-cnn",
        "version": "1.1.0",
        "slot": "defect",
        "state": state,
        "wave": 0,
        "waves": [1],
        "reason": None,
        "gateways": {"gw-2": {"wave": 1, "status": status, "reason": None}},
        "events": [{"at": f"t{i}", "kind": f"k{i}", "message": f"event {i}"} for i in range(events)],
    }


def test_watch_into_a_pipe_prints_each_change_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Five polls: two identical ones, then the gateway installs, then the rollout completes.
    polls = iter(
        [
            _rollout("running", "waiting", 1),
            _rollout("running", "waiting", 1),
            _rollout("running", "installed", 2),
            _rollout("running", "installed", 2),
            _rollout("completed", "installed", 3),
        ]
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=next(polls)))
    env = {"FACTORYCTL_CONFIG": str(tmp_path / "config.json")}
    with httpx.Client(transport=transport, base_url="http://api") as client:
        code = factoryctl.main(
            ["rollouts", "status", "r1", "--watch", "--interval", "0"], environ=env, client=client
        )
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        # the full view once, at the start
        "rollout r1: defect-cnn 1.1.0 -> slot defect  state RUNNING  wave 1/1 [1]",
        "GATEWAY  WAVE  STATUS   REASON",
        "gw-2     1     waiting  -",
        f"  t0  {'k0':15} event 0",
        # then one line per change; the identical polls print nothing
        "  gw-2 (wave 1) installed",
        f"  t1  {'k1':15} event 1",
        "rollout r1: state COMPLETED  wave 1/1",
        f"  t2  {'k2':15} event 2",
    ]


def test_other_requests_keep_the_apis_field_names() -> None:
    detail = [
        {"loc": ["body", "thresholds", "max_error_rate"], "msg": "Input should be less than or equal to 1"}
    ]
    assert readable_detail(detail) == "thresholds.max_error_rate: Input should be less than or equal to 1"
    query = [{"loc": ["query", "limit"], "msg": "too big"}]
    assert readable_detail(query, {"thresholds.max_error_rate": ("--x", "")}) == "query.limit: too big"
