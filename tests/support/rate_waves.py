"""Seeded simulations of what a gateway reports around an update: the parts the old model flagged,
then the parts the new one flags, report after report.

The defect-rate gates' stated false-alarm and detection rates are counted over such waves. Parts
are drawn with numpy's seeded generator as whole counts, and each report carries what a gateway
reports (``inferences``, ``defect_rate``), so the count of waves a gate fails is exact arithmetic:
the same on every machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

# A line at 2 parts a second reporting its health every 30 s (the agent's report_interval_s).
PARTS_PER_REPORT = 60


@dataclass(frozen=True)
class Wave:
    """One gateway through one update: its health before (the baseline), then each report since."""

    baseline: dict[str, Any]
    reports: list[dict[str, Any]]


def _health(parts: int, flagged: int) -> dict[str, Any]:
    return {"inferences": parts, "errors": 0, "defect_rate": flagged / parts}


def simulate_waves(
    count: int,
    seed: int,
    rate_before: float,
    rate_after: float,
    parts_before: int,
    first_report_parts: int,
    reports: int = 1,
) -> Iterator[Wave]:
    """``count`` waves: the old model flagged parts at ``rate_before`` over ``parts_before`` parts;
    the new one flags at ``rate_after``, first reported after ``first_report_parts`` parts, then
    :data:`PARTS_PER_REPORT` more for each of the ``reports - 1`` reports after it."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        baseline = _health(parts_before, int(rng.binomial(parts_before, rate_before)))
        parts, flagged = first_report_parts, int(rng.binomial(first_report_parts, rate_after))
        seen = [_health(parts, flagged)]
        for _ in range(reports - 1):
            parts += PARTS_PER_REPORT
            flagged += int(rng.binomial(PARTS_PER_REPORT, rate_after))
            seen.append(_health(parts, flagged))
        yield Wave(baseline, seen)
