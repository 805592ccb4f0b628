"""Model workers: one thread per slot, micro-batching frames from its queue into the outbox."""

from __future__ import annotations

import logging
import threading
import uuid

from edge_agent.frames import FrameQueue
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox, ResultDraft
from edge_agent.runtime import Prediction, Runner
from protocol.messages import utcnow

log = logging.getLogger(__name__)


class InferenceWorker:
    """Collect up to ``max_batch`` frames (or wait ``max_wait_ms``), infer, store results durably.

    On stop it drains what is already queued, so frames accepted from a BLOCK source are not lost.
    """

    def __init__(
        self,
        runner: Runner,
        queue: FrameQueue,
        outbox: Outbox,
        metrics: Metrics,
        stop: threading.Event,
        line: str,
        station: str,
        max_batch: int,
        max_wait_ms: float,
    ) -> None:
        self.runner = runner
        self.queue = queue
        self._outbox = outbox
        self._metrics = metrics
        self._stop = stop
        self._line = line
        self._station = station
        self._max_batch = max_batch if runner.dynamic_batch else 1
        self._max_wait_s = max_wait_ms / 1000.0
        self.batch_sizes: list[int] = []  # kept short; for tests and the curious
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name=f"infer-{runner.slot}", daemon=True)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def join(self, timeout: float) -> bool:
        """Wait for the thread (after the stop event); False if it is still alive."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            frames = self.queue.get_batch(self._max_batch, self._max_wait_s)
            if not frames:
                if self._stop.is_set() and len(self.queue) == 0:
                    return
                continue
            try:
                predictions = self.runner.infer(frames)
            except Exception:
                # One bad frame or a model bug must not stop the line; it is counted and logged.
                self.failures += 1
                log.exception("slot %s: inference failed on %d frame(s)", self.runner.slot, len(frames))
                continue
            try:
                self._record(predictions)
            except Exception:
                self.failures += 1
                log.exception(
                    "slot %s: cannot store %d result(s) in the outbox", self.runner.slot, len(frames)
                )

    def _record(self, predictions: list[Prediction]) -> None:
        if not predictions:
            return  # e.g. a parcel tracker that counted nothing in these frames
        slot = self.runner.slot
        self._metrics.inference(slot, len(predictions), predictions[0].latency_ms / 1000.0)
        if len(self.batch_sizes) < 10_000:
            self.batch_sizes.append(len(predictions))
        inferred_at = utcnow()
        ref = self.runner.ref
        drafts = [
            ResultDraft(
                id=uuid.uuid4(),
                captured_at=p.frame.captured_at,
                inferred_at=inferred_at,
                line=self._line,
                station=self._station,
                source=p.frame.source,
                frame=p.frame.ref[:256],
                model=ref,
                output=p.output,
                latency_ms=p.latency_ms,
            )
            for p in predictions
        ]
        self._outbox.append(drafts)
