"""A slot's drift watch: the monitor of the release it serves, fed after inference, heard on the wire.

Each transition of the verdict (suspected, confirmed, cleared) becomes a ``model_drift`` event on
the durable outbox (details: ``protocol.drift.DRIFT_EVENT_KIND``) and a log line; every
evaluation sets the slot's gauges; telemetry reads :meth:`DriftWatch.status`. A release without a
drift reference runs unwatched (said once in the log). An OTA swap starts a fresh monitor with the
new release's reference at the first batch the new release serves.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from edge_agent.frames import Frame
from edge_agent.metrics import Metrics
from edge_agent.outbox import EventDraft
from edge_agent.runtime import Prediction, Runner
from edge_agent.runtime.drift_inputs import observations
from edge_agent.runtime.drift_monitor import DriftEvaluation, DriftMonitor
from protocol.drift import DRIFT_EVENT_KIND
from protocol.messages import SlotDrift, wire_text

log = logging.getLogger(__name__)

EVENT_LEVELS = {"confirmed": "warning", "suspected": "info", "cleared": "info"}


class DriftWatch:
    """One slot's drift monitor, rebuilt whenever another release serves the slot."""

    def __init__(self, slot: str, metrics: Metrics, emit: Callable[[EventDraft], None]) -> None:
        self.slot = slot
        self._metrics = metrics
        self._emit = emit
        self._sha: str | None = None
        self._model = ""
        self._monitor: DriftMonitor | None = None
        self._lock = threading.Lock()

    def _serve(self, runner: Runner) -> None:
        manifest = runner.manifest
        self._sha, self._model = manifest.sha256, f"{manifest.name} {manifest.version}"
        monitor = None
        if manifest.drift is None:
            log.info("slot %s: %s carries no drift reference; drift is not watched", self.slot, self._model)
        else:
            try:
                monitor = DriftMonitor(manifest.drift)
            except ValueError as exc:
                log.warning("slot %s: %s: drift not watched: %s", self.slot, self._model, exc)
        with self._lock:
            self._monitor = monitor
        self._metrics.drift(self.slot, None if monitor is None else "ok", {})

    def observe(self, runner: Runner, frames: Sequence[Frame], predictions: Sequence[Prediction]) -> None:
        """Feed one micro-batch: the frames ``runner`` just ran and its predictions; report any transition."""
        if runner.manifest.sha256 != self._sha:
            self._serve(runner)
        monitor = self._monitor
        if monitor is None:
            return
        before = monitor.last
        seen = observations(runner, frames, predictions, monitor.names, monitor.reference.centroids)
        for evaluation in monitor.observe_inputs(seen):
            self._report(evaluation)
        last = monitor.last
        if last is not None and last is not before:
            self._metrics.drift(self.slot, last.state, {n: r.ratio for n, r in last.readings.items()})

    def _report(self, evaluation: DriftEvaluation) -> None:
        transition = evaluation.transition or evaluation.state
        text = f"slot {self.slot}: {self._model}: {evaluation.describe()}"
        level = EVENT_LEVELS.get(transition, "info")
        log.log(logging.WARNING if level == "warning" else logging.INFO, "%s", text)
        self._emit(
            EventDraft(
                kind=DRIFT_EVENT_KIND,
                level="warning" if level == "warning" else "info",
                message=wire_text(text, 2000),
                details={"slot": self.slot, "model": self._model, **evaluation.details()},
            )
        )

    def status(self) -> SlotDrift | None:
        """The slot's verdict for telemetry; None while its release has no drift reference."""
        with self._lock:
            monitor = self._monitor
        return None if monitor is None else monitor.status(self.slot)
