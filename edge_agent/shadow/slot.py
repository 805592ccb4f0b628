"""One slot's shadow run: the challenger on the champion's frames, after the champion, within a budget.

The slot's inference worker calls :meth:`ShadowSlot.after_batch` once the champion's results of a
micro-batch are in the outbox, so a challenger can never change, delay the storing of or replace
a result, a sort lane or a PLC output: its predictions go nowhere but into the window's counts.
What it may delay is the *next* batch, so it runs only as many frames as its measured per-frame
time fits in ``shadow.budget_ms``, and none while the slot's queue holds more than
``shadow.max_backlog`` frames (the champion is behind: the challenger skips, the champion never).
Each window (``window_frames`` frames or ``window_s`` seconds) becomes a comparison record, a
``shadow_comparison`` event on the durable outbox (``protocol/shadow.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from edge_agent.frames import Frame
from edge_agent.outbox_streams import EventDraft
from edge_agent.runtime import Prediction, Runner
from edge_agent.shadow.capture import ShadowCaptures
from edge_agent.shadow.compare import Window, score_of
from edge_agent.shadow.config import ShadowConfig
from edge_agent.shadow.metrics import ShadowMetrics
from protocol.messages import ModelRef, utcnow, wire_text
from protocol.shadow import SHADOW_EVENT_KIND, ShadowComparison

log = logging.getLogger(__name__)

EWMA = 0.3  # weight of the latest per-frame time in the estimate: follows load, forgets one outlier


class Budget:
    """How many frames of a batch the challenger may run, from its measured time per frame."""

    def __init__(self, budget_ms: float, probe_interval_s: float) -> None:
        self.budget_ms = budget_ms
        self.probe_interval_s = probe_interval_s
        self.per_frame_ms: float | None = None
        self._probed = float("-inf")

    def allowed(self, frames: int, now: float) -> int:
        """Frames to run of ``frames``; the first run measures on one frame."""
        if self.per_frame_ms is None:
            self._probed = now  # the measurement is the first probe
            return min(frames, 1)
        fits = int(self.budget_ms // max(self.per_frame_ms, 1e-6))
        if fits >= 1:
            return min(frames, fits)
        # Slower than the whole budget: one frame now and then tells when the CPU has room again.
        if now - self._probed >= self.probe_interval_s:
            self._probed = now
            return min(frames, 1)
        return 0

    def measured(self, per_frame_ms: float) -> None:
        old = self.per_frame_ms
        self.per_frame_ms = per_frame_ms if old is None else (1 - EWMA) * old + EWMA * per_frame_ms


class ShadowSlot:
    """The challenger of one slot (or none), its budget and its open window."""

    def __init__(
        self,
        slot: str,
        config: ShadowConfig,
        metrics: ShadowMetrics,
        emit: Callable[[EventDraft], None],
        captures: ShadowCaptures | None = None,
    ) -> None:
        self.slot = slot
        self.config = config
        self._metrics = metrics
        self._emit = emit
        self._captures = captures if config.capture.enabled else None
        # Held for a whole batch: once detach() returns, the challenger never runs again.
        self._lock = threading.Lock()
        self._challenger: Runner | None = None
        self._budget = Budget(config.budget_ms, config.probe_interval_s)
        self._window: Window | None = None
        self._window_t0 = 0.0
        self._failed = False  # the challenger raised since it was attached (logged once)
        self.compared = 0  # since the challenger was attached
        self.skipped = 0
        self.records: list[ShadowComparison] = []  # the latest few, for tests and the curious

    @property
    def challenger(self) -> ModelRef | None:
        with self._lock:
            return None if self._challenger is None else self._challenger.ref

    def attach(self, runner: Runner) -> None:
        """Run ``runner`` as the challenger from the next batch on (closing the previous one's window)."""
        with self._lock:
            self._close_window()
            self._challenger = runner
            self._budget = Budget(self.config.budget_ms, self.config.probe_interval_s)
            self.compared = self.skipped = 0
            self._failed = False
        log.info("shadow: slot %s: challenger %s %s attached", self.slot, runner.ref.name, runner.ref.version)

    def detach(self) -> Runner | None:
        """Stop shadowing (after the batch in hand); its window is recorded. Returns the challenger."""
        with self._lock:
            self._close_window()
            runner, self._challenger = self._challenger, None
        return runner

    def flush(self) -> None:
        """Record the open window now (the agent stops)."""
        with self._lock:
            self._close_window()

    # ---- the worker's thread ----------------------------------------------------------------
    def after_batch(
        self, champion: Runner, frames: Sequence[Frame], predictions: Sequence[Prediction], backlog: int
    ) -> None:
        """Run the challenger on what fits of the batch the champion just served, and count it."""
        with self._lock:
            challenger = self._challenger
            if challenger is None:
                return
            now = time.monotonic()
            window = self._window
            if window is not None and (
                window.champion.sha256 != champion.manifest.sha256
                or now - self._window_t0 >= self.config.window_s
            ):
                self._close_window()
            by_frame = {id(p.frame): p for p in predictions}
            scored = [f for f in frames if id(f) in by_frame]  # one verdict per frame (no parcels)
            if not scored:
                return
            backlog_limit = self.config.max_backlog
            behind = backlog_limit is not None and backlog > backlog_limit
            take = 0 if behind else self._budget.allowed(len(scored), now)
            ran, theirs, errors = self._run(challenger, scored[:take])
            champion_ms = predictions[0].latency_ms / len(predictions)
            for frame in scored:
                current = self._open(champion.ref, challenger.ref)
                mine = by_frame[id(frame)]
                other = theirs.get(id(frame))
                if other is not None:
                    self._compare(current, frame, mine, other, champion_ms, ran)
                elif id(frame) in errors:
                    current.errors += 1
                    self._metrics.skipped(self.slot, "error", 1)
                else:
                    current.skipped += 1
                    self.skipped += 1
                    self._metrics.skipped(self.slot, "backlog" if behind else "budget", 1)
                if current.frames >= self.config.window_frames:
                    self._close_window()

    def _run(
        self, challenger: Runner, frames: Sequence[Frame]
    ) -> tuple[float, dict[int, Prediction], set[int]]:
        """The challenger on ``frames``: per-frame ms, its predictions by frame, frames lost to an error."""
        if not frames:
            return 0.0, {}, set()
        started = time.perf_counter()
        try:
            predictions = challenger.infer(frames)
        except Exception:
            # A challenger's fault is a finding about the challenger, never a fault of the slot;
            # the traceback once per challenger, then only the record's challenger_errors count.
            if not self._failed:
                log.exception("shadow: slot %s: challenger failed on %d frame(s)", self.slot, len(frames))
            self._failed = True
            return 0.0, {}, {id(f) for f in frames}
        per_frame = (time.perf_counter() - started) * 1000.0 / len(frames)
        self._budget.measured(per_frame)
        return per_frame, {id(p.frame): p for p in predictions}, set()

    def _open(self, champion: ModelRef, challenger: ModelRef) -> Window:
        if self._window is None:
            self._window = Window(self.slot, champion, challenger, utcnow())
            self._window_t0 = time.monotonic()
        return self._window

    def _compare(
        self,
        window: Window,
        frame: Frame,
        mine: Prediction,
        other: Prediction,
        mine_ms: float,
        other_ms: float,
    ) -> None:
        differ = window.compare(mine, other, mine_ms, other_ms)
        self.compared += 1
        self._metrics.compared(self.slot, 1, 1 if differ else 0)
        if not differ or self._captures is None or frame.image.size == 0:
            return
        if window.captured >= self._captures.config.frames:
            return
        if window.capture_id is None:
            note = (
                f"shadow run: {window.challenger.name} {window.challenger.version} (challenger) disagrees "
                f"with {window.champion.name} {window.champion.version}; file labels are the champion's"
            )
            window.capture_id = self._captures.open(self.slot, note)
            if window.capture_id is None:
                return
        if self._captures.offer(window.capture_id, frame, window.champion, mine.output.label, score_of(mine)):
            window.captured += 1

    def _close_window(self) -> None:
        """Emit the open window's record (under the lock)."""
        window, self._window = self._window, None
        if window is None or window.frames == 0:
            return
        if window.capture_id is not None and self._captures is not None:
            self._captures.close(window.capture_id, window.captured)
        record = window.record(utcnow())
        self.records = [*self.records[-9:], record]
        self._metrics.agreement(self.slot, record.agreement)
        agreement = "n/a" if record.agreement is None else f"{record.agreement:.1%}"
        text = (
            f"slot {self.slot}: challenger {record.challenger.name} {record.challenger.version} vs "
            f"{record.champion.name} {record.champion.version}: {record.compared} frame(s) compared, "
            f"{record.skipped} skipped, agreement {agreement}, {record.disagreements} disagreement(s)"
            + (f" (capture {record.capture_id})" if record.capture_id else "")
        )
        log.info("shadow: %s", text)
        self._emit(
            EventDraft(
                kind=SHADOW_EVENT_KIND, level="info", message=wire_text(text, 2000), details=record.details()
            )
        )
