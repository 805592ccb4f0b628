"""A slot's drift monitor: a rolling window of live frames against its release's drift reference.

Fed with every prediction after inference (the gateway's pipeline, and ``factory-models drift``
offline). Once the window is full it is evaluated every ``step`` frames; the verdict moves

    ok --(a statistic over its threshold)--> suspected
    suspected --(over on confirm_after consecutive evaluations)--> confirmed
    suspected | confirmed --(calm on clear_after consecutive evaluations)--> ok ("cleared")

where calm means every statistic at most ``clear_ratio`` times its threshold (hysteresis: a
statistic hovering at its threshold neither confirms nor clears). Each transition is returned as
a :class:`DriftEvaluation`, which the agent turns into a ``model_drift`` event.

A look change moves the input signals (and usually the scores of all parts); a burst of defects
moves only the top of the score distribution, which the ``bulk`` statistic ignores: the window's
flagged share is reported beside the verdict, never alarmed on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_agent.runtime.drift import (
    KNOWN_SIGNALS,
    is_flagged,
    prediction_signals,
    reference_median,
    statistics,
)
from edge_agent.runtime.drift_inputs import Observation
from edge_agent.runtime.model import Prediction
from protocol.drift import INPUT_SIGNALS, SCORE_SIGNAL, DriftReference
from protocol.messages import DriftState, EventValue, SlotDrift

log = logging.getLogger(__name__)

TEST_NAME = "ks+bulk"


@dataclass(frozen=True)
class SignalReading:
    """One signal's statistic at an evaluation, against its threshold."""

    statistic: float
    threshold: float
    up: bool

    @property
    def moved(self) -> bool:
        """Over its threshold."""
        return self.statistic > self.threshold

    @property
    def ratio(self) -> float:
        """Statistic / threshold."""
        return self.statistic / self.threshold


@dataclass(frozen=True)
class DriftEvaluation:
    """The window against the reference at one evaluation, and the transition it caused (if any)."""

    state: DriftState
    transition: str | None
    readings: dict[str, SignalReading]
    window: int
    frames: int
    flagged_share: float
    reference: DriftReference = field(repr=False)
    score_median: float | None = None

    @property
    def moved(self) -> tuple[str, ...]:
        """Signals over their thresholds."""
        return tuple(name for name, r in self.readings.items() if r.moved)

    @property
    def cause(self) -> str:
        """'look' when an input signal moved, 'scores' when only signals of the outputs did, '' when none."""
        if any(name in INPUT_SIGNALS for name in self.moved):
            return "look"
        return "scores" if self.moved else ""

    @property
    def ratio(self) -> float:
        """The largest statistic / threshold."""
        return max((r.ratio for r in self.readings.values()), default=0.0)

    @property
    def reference_score_median(self) -> float | None:
        """The reference's median score, when the reference has a score signal."""
        signal = self.reference.signals.get(SCORE_SIGNAL)
        return None if signal is None else reference_median(signal)

    def movement(self) -> str:
        """'warmth up, score up' (the signals over their thresholds), or 'nothing moved'."""
        parts = [f"{name} {'up' if self.readings[name].up else 'down'}" for name in self.moved]
        return ", ".join(parts) or "nothing moved"

    def describe(self) -> str:
        """One line: the verdict, what moved, the score's shift and the flagged share."""
        verdict = "cleared" if self.transition == "cleared" else self.state
        return f"drift {verdict}: {self.movement()}; {self.figures()}"

    def figures(self) -> str:
        """The window's median score and flagged share against the reference's."""
        parts = []
        ref_median = self.reference_score_median
        if self.score_median is not None and ref_median:
            parts.append(
                f"median score {self.score_median:.3f} vs {ref_median:.3f} at fit time"
                f" ({self.score_median / ref_median:.2f}x)"
            )
        if self.reference.flagged_share > 0 or self.flagged_share > 0:  # only defect models flag
            parts.append(
                f"{self.flagged_share:.0%} flagged vs {self.reference.flagged_share:.0%} at fit time"
            )
        return "; ".join(parts) + f" ({self.window}-input window)"

    def details(self) -> dict[str, EventValue]:
        """The event's details (documented at protocol.drift.DRIFT_EVENT_KIND), without slot and model."""
        details: dict[str, EventValue] = {
            "transition": self.transition,
            "state": self.state,
            "moved": ",".join(f"{n}:{'up' if self.readings[n].up else 'down'}" for n in self.moved),
            "cause": self.cause,
            "window": self.window,
            "frames": self.frames,
            "test": TEST_NAME,
            "false_alarm_rate": self.reference.false_alarm_rate,
            "flagged_share": round(self.flagged_share, 4),
            "reference_flagged_share": self.reference.flagged_share,
        }
        for name, reading in self.readings.items():
            details[f"{name}_statistic"] = round(reading.statistic, 4)
            details[f"{name}_threshold"] = round(reading.threshold, 4)
        ref_median = self.reference_score_median
        if self.score_median is not None and ref_median is not None:
            details["score_median"] = round(self.score_median, 4)
            details["reference_score_median"] = round(ref_median, 4)
            details["score_ratio"] = round(self.score_median / ref_median, 3) if ref_median > 0 else None
        return details


class DriftMonitor:
    """The rolling window and the verdict of one slot; ``observe`` from one thread, ``status`` from any."""

    def __init__(self, reference: DriftReference) -> None:
        self.reference = reference
        unknown = sorted(set(reference.signals) - KNOWN_SIGNALS)
        if unknown:
            # A newer builder's signal: the others still watch the line.
            log.warning("drift reference signals %s are unknown to this agent and not watched", unknown)
        self._names = [name for name in reference.signals if name in KNOWN_SIGNALS]
        if not self._names:
            raise ValueError(f"drift reference has no signal this agent knows ({sorted(KNOWN_SIGNALS)})")
        self._wanted = frozenset(self._names)
        size = reference.window
        self._values = np.full((size, len(self._names)), np.nan)
        self._flags = np.zeros(size, dtype=bool)
        self._frames = 0
        self._since_evaluation = 0
        self._state: DriftState = "ok"
        self._over_streak = 0
        self._calm_streak = 0
        self._lock = threading.Lock()
        self._last: DriftEvaluation | None = None

    @property
    def last(self) -> DriftEvaluation | None:
        """The latest evaluation (None until the window first filled)."""
        with self._lock:
            return self._last

    @property
    def names(self) -> frozenset[str]:
        """The signals this monitor watches (those of the reference this agent knows)."""
        return self._wanted

    def observe(self, predictions: Sequence[Prediction]) -> list[DriftEvaluation]:
        """Add each prediction's signals (an image model's); return the evaluations that changed the verdict."""
        return self.observe_inputs(
            [Observation(prediction_signals(p, self._wanted), is_flagged(p)) for p in predictions]
        )

    def observe_inputs(self, observations: Sequence[Observation]) -> list[DriftEvaluation]:
        """Add each input's signals (``edge_agent.runtime.drift_inputs``); return the transitions."""
        transitions = []
        for observation in observations:
            evaluation = self.add(observation.values, observation.flagged)
            if evaluation is not None and evaluation.transition is not None:
                transitions.append(evaluation)
        return transitions

    def add(self, values: dict[str, float], flagged: bool) -> DriftEvaluation | None:
        """Add one frame's signals; evaluate when the window is full and ``step`` frames came since."""
        missing = [name for name in self._names if name not in values]
        if missing:
            raise ValueError(f"drift monitor: frame without signal(s) {missing}")
        slot = self._frames % self.reference.window
        self._values[slot] = [values[name] for name in self._names]
        self._flags[slot] = flagged
        self._frames += 1
        self._since_evaluation += 1
        if self._frames < self.reference.window or self._since_evaluation < self.reference.step:
            return None
        self._since_evaluation = 0
        return self._evaluate()

    def _evaluate(self) -> DriftEvaluation:
        ref = self.reference
        readings = {}
        for column, name in enumerate(self._names):
            signal = ref.signals[name]
            stat, up = statistics(signal, self._values[:, column][None, :])
            readings[name] = SignalReading(float(stat[0]), signal.threshold, bool(up[0]))
        over = any(r.moved for r in readings.values())
        calm = all(r.statistic <= ref.clear_ratio * r.threshold for r in readings.values())
        self._over_streak = self._over_streak + 1 if over else 0
        self._calm_streak = self._calm_streak + 1 if calm else 0
        transition = self._next_state(over)
        score = self._names.index(SCORE_SIGNAL) if SCORE_SIGNAL in self._names else None
        evaluation = DriftEvaluation(
            state=self._state,
            transition=transition,
            readings=readings,
            window=ref.window,
            frames=self._frames,
            flagged_share=float(self._flags.mean()),
            reference=ref,
            score_median=None if score is None else float(np.median(self._values[:, score])),
        )
        with self._lock:
            self._last = evaluation
        return evaluation

    def _next_state(self, over: bool) -> str | None:
        ref = self.reference
        if self._state == "ok" and over:
            self._state = "confirmed" if ref.confirm_after <= 1 else "suspected"
            return self._state
        if self._state == "suspected" and self._over_streak >= ref.confirm_after:
            self._state = "confirmed"
            return "confirmed"
        if self._state != "ok" and self._calm_streak >= ref.clear_after:
            self._state = "ok"
            return "cleared"
        return None

    def status(self, slot: str) -> SlotDrift:
        """The verdict for telemetry."""
        with self._lock:
            last = self._last
        frames = min(self._frames, self.reference.window)
        if last is None:
            return SlotDrift(slot=slot, state="ok", ratio=0.0, frames=frames)
        return SlotDrift(
            slot=slot, state=last.state, moved=last.moved, ratio=round(last.ratio, 4), frames=frames
        )
