"""Model workers: one thread per slot, micro-batching frames from its queue into the outbox."""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from typing import Protocol

from edge_agent.drift_watch import DriftWatch
from edge_agent.frames import Frame, FrameQueue
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox, ResultDraft
from edge_agent.runtime import Prediction, Runner
from edge_agent.thumbnails import ThumbnailConfig, Thumbnailer
from protocol.messages import utcnow

log = logging.getLogger(__name__)


class FrameTap(Protocol):
    """Sees each micro-batch's frames after its results are stored (the capture recorder)."""

    def observe(self, runner: Runner, frames: Sequence[Frame], predictions: Sequence[Prediction]) -> None: ...


class BatchObserver(Protocol):
    """Sees every micro-batch's outcome, keyed by the model that produced it (the OTA health window)."""

    def batch(self, sha256: str, predictions: Sequence[Prediction]) -> None: ...

    def failure(self, sha256: str, frames: int) -> None: ...


class ShadowHook(Protocol):
    """Runs the slot's challenger on a batch after the champion's results are stored (edge_agent.shadow)."""

    def after_batch(
        self, champion: Runner, frames: Sequence[Frame], predictions: Sequence[Prediction], backlog: int
    ) -> None: ...


class InferenceWorker:
    """Collect up to ``max_batch`` frames (or wait ``max_wait_ms``), infer, store results durably.

    On stop it drains what is already queued, so frames accepted from a BLOCK source are not lost.
    ``swap_runner`` changes the model between two micro-batches: each batch is taken from the
    queue once and run by exactly one model, so a swap neither loses nor repeats a frame.
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
        thumbnails: ThumbnailConfig | None = None,
        drift: DriftWatch | None = None,
        tap: FrameTap | None = None,
    ) -> None:
        self.runner = runner
        self.drift = drift
        self.tap = tap
        # Per worker, so each slot has its own rate limit; on by default with default limits.
        self.thumbnailer = Thumbnailer(thumbnails or ThumbnailConfig())
        self.observer: BatchObserver | None = None
        self.shadow: ShadowHook | None = None  # set when OTA may install a challenger
        self._runner_lock = threading.Lock()
        self.queue = queue
        self._outbox = outbox
        self._metrics = metrics
        self._stop = stop
        self._line = line
        self._station = station
        self._batch_limit = max_batch
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

    def swap_runner(self, runner: Runner) -> Runner:
        """Serve ``runner`` from the next micro-batch on; return the one it replaces."""
        with self._runner_lock:
            old, self.runner = self.runner, runner
            self._max_batch = self._batch_limit if runner.dynamic_batch else 1
        log.info(
            "slot %s: now serving %s %s (was %s)",
            runner.slot,
            runner.ref.name,
            runner.ref.version,
            old.ref.version,
        )
        return old

    def _run(self) -> None:
        while True:
            with self._runner_lock:
                max_batch = self._max_batch
            frames = self.queue.get_batch(max_batch, self._max_wait_s)
            if not frames:
                if self._stop.is_set() and len(self.queue) == 0:
                    return
                continue
            try:
                self._process(frames)
            finally:
                self.queue.done(len(frames))

    def _process(self, frames: list[Frame]) -> None:
        with self._runner_lock:
            runner = self.runner  # read once per batch: the whole batch runs on one model
        sha = runner.manifest.sha256
        try:
            predictions = runner.infer(frames)  # a fixed-batch runner loops over frames itself
        except Exception:
            # One bad frame or a model bug must not stop the line; it is counted and logged.
            self.failures += 1
            if self.observer is not None:
                self.observer.failure(sha, len(frames))
            log.exception("slot %s: inference failed on %d frame(s)", runner.slot, len(frames))
            return
        if self.observer is not None:
            self.observer.batch(sha, predictions)
        self._store(runner, predictions)
        if self.drift is not None:
            _watch_drift(self.drift, runner, frames, predictions)
        if self.tap is not None:
            _tap(self.tap, runner, frames, predictions)
        if self.shadow is not None:
            _shadow(self.shadow, runner, frames, predictions, len(self.queue))

    def _store(self, runner: Runner, predictions: list[Prediction]) -> None:
        """Write results to the outbox, retrying with backoff: a full or failing disk holds the line
        (sources back-pressure or drop frames by their policy) rather than losing results."""
        delay = 0.5
        while True:
            try:
                self._record(runner, predictions)
                return
            except (sqlite3.Error, OSError):
                self.failures += 1
                log.exception(
                    "slot %s: cannot store %d result(s) in the outbox; retrying in %.1fs",
                    runner.slot,
                    len(predictions),
                    delay,
                )
            except Exception:
                # Not the disk: results the wire contract cannot carry (a model bug). Retrying
                # cannot help and would stall the slot, so count, log and go on.
                self.failures += 1
                log.exception("slot %s: %d result(s) cannot be recorded", runner.slot, len(predictions))
                return
            if self._stop.wait(delay):
                log.error("slot %s: stopping with %d result(s) not stored", runner.slot, len(predictions))
                return
            delay = min(delay * 2, 10.0)

    def _record(self, runner: Runner, predictions: list[Prediction]) -> None:
        if not predictions:
            return  # e.g. a parcel tracker that counted nothing in these frames
        slot = runner.slot
        self._metrics.inference(slot, len(predictions), predictions[0].latency_ms / 1000.0)
        if len(self.batch_sizes) < 10_000:
            self.batch_sizes.append(len(predictions))
        inferred_at = utcnow()
        ref = runner.ref
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
                thumbnail_jpeg=self.thumbnailer.for_result(p.output, p.frame.image),
            )
            for p in predictions
        ]
        self._outbox.append(drafts)


def _watch_drift(
    watch: DriftWatch, runner: Runner, frames: list[Frame], predictions: list[Prediction]
) -> None:
    """After the results are stored: a fault in drift watching must never cost a result."""
    try:
        watch.observe(runner, frames, predictions)
    except Exception:
        log.exception("slot %s: drift watch failed on %d prediction(s)", runner.slot, len(predictions))


def _tap(tap: FrameTap, runner: Runner, frames: list[Frame], predictions: list[Prediction]) -> None:
    """After the results are stored: a fault in capturing frames must never cost a result."""
    try:
        tap.observe(runner, frames, predictions)
    except Exception:
        log.exception("slot %s: capturing frames failed on %d frame(s)", runner.slot, len(frames))


def _shadow(
    shadow: ShadowHook, runner: Runner, frames: list[Frame], predictions: list[Prediction], backlog: int
) -> None:
    """Last, after the results are stored: a challenger's fault must never cost the champion anything."""
    try:
        shadow.after_batch(runner, frames, predictions, backlog)
    except Exception:
        log.exception("slot %s: shadow run failed on %d frame(s)", runner.slot, len(frames))
