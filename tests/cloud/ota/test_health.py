"""Judging a gateway's health: the gates agree with the engine's verdict, and reasons keep their units."""

from __future__ import annotations

import random

from cloud.console.render import milliseconds, significant
from cloud.ota.health import gate_values, health_problem
from cloud.ota.schemas import Thresholds


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


def test_gate_values_agree_with_the_engine_verdict() -> None:
    """Whatever the numbers, a gate shows failed exactly when the engine finds the gateway unhealthy."""
    rng = random.Random(5)

    def maybe(value: float) -> float | None:
        return None if rng.random() < 0.2 else value

    for _ in range(2000):
        health = {"inferences": rng.randint(0, 60), "errors": rng.randint(0, 6), "p95_latency_ms": maybe(rng.uniform(5, 300)),
                  "defect_rate": maybe(rng.random()), "mean_confidence": maybe(rng.random())}  # fmt: skip
        baseline = {"defect_rate": maybe(rng.random()), "mean_confidence": maybe(rng.random())}
        t = Thresholds(
            max_error_rate=maybe(rng.uniform(0.01, 0.2)), max_p95_latency_ms=maybe(rng.uniform(20, 250)),
            max_defect_rate_shift=maybe(rng.uniform(0.05, 0.5)), max_confidence_drop=maybe(rng.uniform(0.05, 0.5)),
            min_inferences=rng.randint(0, 40),
        )  # fmt: skip
        gates = gate_values(health, baseline, t)
        failed = [g["gate"] for g in gates if g["ok"] is False and g["gate"] != "min_inferences"]
        problem = health_problem(health, baseline, t)
        assert (problem is None) == (not failed), (health, baseline, t, gates, problem)
