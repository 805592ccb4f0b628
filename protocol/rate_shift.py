"""Whether a model's defect rate changed, told apart from sampling noise.

The gateway's health window and the cloud's rollout gate both compare the share of parts a new
model flags with the share the previous model flagged. A rate measured on n parts wobbles by
about sqrt(p(1 - p) / n): at 8.6 % on 500 parts that is ±1.3 points, so two healthy measurements
of one model often differ by 2 or 3 points, and a fixed limit on the difference either misses
real changes (a wide limit) or rolls back healthy updates (a narrow one). Here a change counts
only when it is larger than the caller's tolerance *and* the two-proportion z statistic puts it
beyond noise: |z| >= :data:`SHIFT_Z`. Both sides judge with this one function, so a gateway and
the cloud never disagree about the same numbers.

What that buys, measured by tests/cloud/ota/test_defect_rate_gate.py: with 5,000 parts on each
side, a healthy update fails in well under 1 % of waves, and a drop from 8.6 % to 6.2 % is
caught in about 9 waves of 10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from protocol.ota import HEALTH_HISTORY

# Two-sided 0.1 % for one judgement of a healthy update. The cloud judges a wave again at every
# report until the wave ends, and a fleet judges every gateway: each look adds a little, so the
# per-look rate must be small for the per-rollout rate to stay small.
SHIFT_Z = 3.29


def parts_behind(inferences: int) -> int:
    """How many parts a reported defect rate stands on: the gateway keeps the latest
    :data:`~protocol.ota.HEALTH_HISTORY` predictions of a model (``inferences`` counts them all)."""
    return min(max(inferences, 0), HEALTH_HISTORY)


@dataclass(frozen=True, slots=True)
class RateShift:
    """A defect rate before and after an update, each with the number of parts it was measured on."""

    before: float
    parts_before: int
    now: float
    parts_now: int

    @property
    def points(self) -> float:
        """Now minus before, as a fraction (-0.024 is a fall of 2.4 points)."""
        return self.now - self.before

    @property
    def z(self) -> float:
        """The pooled two-proportion z statistic; 0 when either side saw no part or nothing differs."""
        n0, n1 = self.parts_before, self.parts_now
        if n0 <= 0 or n1 <= 0:
            return 0.0
        pooled = (self.before * n0 + self.now * n1) / (n0 + n1)
        variance = pooled * (1.0 - pooled) * (1.0 / n0 + 1.0 / n1)
        return self.points / math.sqrt(variance) if variance > 0 else 0.0

    def beyond(self, tolerance: float) -> bool:
        """Whether the rate moved by more than ``tolerance`` either way, beyond sampling noise."""
        return abs(self.points) > tolerance and abs(self.z) >= SHIFT_Z

    def describe(self) -> str:
        """E.g. "6.2% on 5000 parts vs 8.6% on 10000 before: -2.4 pts, z -4.6"."""
        return (
            f"{100 * self.now:.1f}% on {self.parts_now} parts vs {100 * self.before:.1f}% on "
            f"{self.parts_before} before: {100 * self.points:+.1f} pts, z {self.z:+.1f}"
        )
