"""Judging a gateway's health: the gates agree with the engine's verdict, reasons keep their units,
and the defect-rate gate holds a committed gateway until it has seen enough parts to judge."""

from __future__ import annotations

import random
import re

from cloud.console.render import milliseconds, significant
from cloud.ota.health import gate_values, health_problem
from cloud.ota.schemas import Thresholds
from protocol.ota import SlotHealth
from tests.support.yard import Yard, loaded


def test_health_reasons_and_console_limits_keep_units_and_small_values() -> None:
    t = Thresholds(max_error_rate=None, max_p95_latency_ms=0.01)
    assert health_problem({"inferences": 10, "errors": 0, "p95_latency_ms": 2.1}, None, t) == (
        "p95 latency 2.1 ms > max 0.01 ms"
    )
    shift = Thresholds(max_error_rate=None, max_defect_rate_shift=0.02, min_defect_rate_parts=50)
    said = health_problem(
        {"inferences": 1000, "defect_rate": 0.2}, {"defect_rate": 0.1, "inferences": 1000}, shift
    )
    assert said == (
        "defect rate 20.0% on 1000 parts vs 10.0% on 1000 before: +10.0 pts, z +6.3: "
        "beyond ±2 pts and sampling noise"
    )
    assert milliseconds(0.01) == "0.01 ms"
    assert milliseconds(2) == "2 ms"
    assert milliseconds(2.14159) == "2.14 ms"
    assert milliseconds(1234.5) == "1234 ms"
    assert milliseconds(None) == "-"
    assert significant(0.0004) == "0.0004"


def test_gate_values_agree_with_the_engine_verdict() -> None:
    """Whatever the numbers, a gate shows failed exactly when the engine finds the gateway unhealthy."""
    rng = random.Random(5)

    def maybe(value: float) -> float | None:
        return None if rng.random() < 0.2 else value

    for _ in range(2000):
        health = {"inferences": rng.randint(0, 120), "errors": rng.randint(0, 6), "p95_latency_ms": maybe(rng.uniform(5, 300)),
                  "defect_rate": maybe(rng.random()), "mean_confidence": maybe(rng.random())}  # fmt: skip
        baseline = {"defect_rate": maybe(rng.random()), "mean_confidence": maybe(rng.random()),
                    "inferences": rng.randint(0, 120)}  # fmt: skip
        t = Thresholds(
            max_error_rate=maybe(rng.uniform(0.01, 0.2)), max_p95_latency_ms=maybe(rng.uniform(20, 250)),
            max_defect_rate_shift=maybe(rng.uniform(0.05, 0.5)), max_confidence_drop=maybe(rng.uniform(0.05, 0.5)),
            min_inferences=rng.randint(0, 40), min_defect_rate_parts=rng.randint(50, 90),
        )  # fmt: skip
        gates = gate_values(health, baseline, t)
        failed = [g["gate"] for g in gates if g["ok"] is False and g["gate"] != "min_inferences"]
        problem = health_problem(health, baseline, t)
        assert (problem is None) == (not failed), (health, baseline, t, gates, problem)


def _slow_line(yard: Yard, baseline_parts: int) -> str:
    """gw-1 ran 1.0 flagging 8.6 % of ``baseline_parts`` parts; a one-wave rollout of 1.1 starts.

    Its install timeout is tiny: a gateway the gate holds has installed, so it must not fail it."""
    yard.birth("gw-1", loaded("defect-cnn", "main", "defect"))
    before = SlotHealth(inferences=baseline_parts, errors=0, defect_rate=0.086)
    yard.report("gw-1", "1.0", 0, health=before)
    rollout: str = yard.create(thresholds={"install_timeout_s": 0.01})["id"]
    yard.tick()  # the wave starts: the baseline is what gw-1 reported before
    return rollout


def test_a_committed_gateway_waits_for_parts_then_a_model_flagging_less_aborts(yard: Yard) -> None:
    """Fault: a new model flagging 6.2 % where the old one flagged 8.6 % went out without comment,
    the wave baked and completed on a few hundred parts. Promise: the gateway stays pending, saying
    how many parts the gate waits for, and once it has them the drop aborts the rollout."""
    rollout = _slow_line(yard, 10_000)
    revision = yard.revision("gw-1")
    yard.report("gw-1", "1.1", revision, health=SlotHealth(inferences=500, errors=0, defect_rate=0.062))
    yard.tick()
    detail = yard.get(rollout)
    gw = detail["gateways"]["gw-1"]
    assert (detail["state"], gw["status"], gw["phase"]) == ("running", "pending", "committed")
    assert gw["reason"] == "defect-rate gate: 500 of 5000 parts seen since the update"
    shift = next(g for g in gw["gates"] if g["gate"] == "max_defect_rate_shift")
    assert (shift["ok"], shift["note"]) == (None, "not judged yet: 500 of 5000 parts since the update")

    yard.report("gw-1", "1.1", revision, health=SlotHealth(inferences=5000, errors=0, defect_rate=0.062))
    yard.tick()
    detail = yard.get(rollout)
    assert detail["state"] == "aborted"
    assert re.search(
        r"gw-1 unhealthy: defect rate 6\.2% on 5000 parts vs 8\.6% on 10000 before: -2\.4 pts, z -5\.\d: "
        r"beyond ±1 pts and sampling noise",
        detail["reason"],
    ), detail["reason"]
    assert yard.publisher.published[-1].slots["main"].manifest.version == "1.0"  # sent back


def test_a_model_that_flags_as_before_completes_once_judged(yard: Yard) -> None:
    rollout = _slow_line(yard, 10_000)
    revision = yard.revision("gw-1")
    yard.report("gw-1", "1.1", revision, health=SlotHealth(inferences=5000, errors=0, defect_rate=0.084))
    yard.tick()
    detail = yard.get(rollout)
    assert detail["state"] == "completed", detail
    shift = next(g for g in detail["gateways"]["gw-1"]["gates"] if g["gate"] == "max_defect_rate_shift")
    assert shift["ok"] is True
    assert shift["note"].startswith("on 5000 parts now, 10000 before: z -0.4"), shift


def test_a_baseline_too_short_to_judge_is_named_in_a_notice_and_not_waited_for(yard: Yard) -> None:
    """A gateway that saw few parts before the update never gets more (the old model is gone): the
    gate cannot judge it, and says so in the rollout's log instead of passing it in silence."""
    rollout = _slow_line(yard, 1187)
    notices = [e["message"] for e in yard.get(rollout)["events"] if e["kind"] == "notice"]
    assert notices == [
        "the defect-rate gate cannot judge gw-1 (1187): parts seen before the update, 5000 needed to "
        "tell a change from noise; compare the line's defect rate before and after yourself"
    ]
    yard.report(
        "gw-1", "1.1", yard.revision("gw-1"), health=SlotHealth(inferences=500, errors=0, defect_rate=0.2)
    )
    yard.tick()
    assert yard.get(rollout)["state"] == "completed"
