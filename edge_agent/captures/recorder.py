"""The capture recorder: copies the next frames of a slot with an open capture into the store.

The inference worker hands it each micro-batch after the results are stored (:meth:`observe`);
that costs a dictionary lookup when no capture is open. Frames a capture takes go through a
bounded queue to the recorder's own thread, which encodes them as PNG and writes them: a full
queue skips a frame (the next one is taken instead) rather than slowing inference. A slot records
one capture at a time; others wait their turn in the order they were asked.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import random
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2

from edge_agent.captures.events import report
from edge_agent.captures.store import CaptureFull, CaptureRecord, CaptureStore, Selector
from edge_agent.frames import Frame
from edge_agent.outbox_streams import EventDraft, EventLevel
from edge_agent.runtime import Prediction, Runner
from protocol.captures import CaptureFile, CaptureOrder, CaptureStatus
from protocol.messages import DefectOutput, ModelRef, utcnow, wire_text

log = logging.getLogger(__name__)

QUEUE_FRAMES = 16
# zlib level 3: a 640x480 camera frame in 18 ms at 249 KiB; level 9 saves a sixth for 30x the CPU.
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]


@dataclass
class _Open:
    """The capture a slot records now: how many frames it took so far (queued ones included)."""

    capture_id: str
    wanted: int
    taken: int
    selector: Selector | None


@dataclass(frozen=True)
class _Take:
    capture_id: str
    frame: Frame
    model: ModelRef
    model_label: str | None
    score: float | None


def defect_probability(prediction: Prediction) -> float | None:
    """How likely the model thinks the part is defective (0.5 at its threshold); None for other tasks."""
    output = prediction.output
    if not isinstance(output, DefectOutput):
        return None
    return output.score if output.is_defect else 1.0 - output.score


class CaptureRecorder:
    """Open captures per slot, the frame queue and the thread that writes frames."""

    def __init__(
        self,
        store: CaptureStore,
        slot_tasks: dict[str, str],
        emit: Callable[[EventDraft], None],
        stop: threading.Event,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self._slot_tasks = slot_tasks
        self._emit = emit
        self._stop = stop
        self._rng = rng or random.Random()  # noqa: S311 - sampling frames, not secrets
        self._lock = threading.Lock()
        self._open: dict[str, _Open] = {}
        self._waiting: dict[str, deque[str]] = {}
        self._queue: queue.Queue[_Take] = queue.Queue(QUEUE_FRAMES)
        self.skipped = 0  # frames a capture wanted while the queue was full
        self._thread = threading.Thread(target=self._run, name="captures", daemon=True)
        for record in store.in_phase("recording"):  # a restart resumes where it stopped
            if record.origin != "shadow":  # a shadow window's frames are chosen, not the next ones
                self._enqueue(record)

    def start(self) -> None:
        self._thread.start()

    @property
    def idle(self) -> bool:
        """No frame queued or being written."""
        return self._queue.unfinished_tasks == 0

    def join(self, timeout: float) -> bool:
        """Wait for the thread (after the stop event), which writes what is queued first."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ---- starting captures ------------------------------------------------------------------
    def start_order(self, order: CaptureOrder) -> None:
        """Begin an operator's capture (or refuse it, recorded for the cloud); a known id is ignored."""
        if self.store.has(order.capture_id):
            return
        now = utcnow()
        record = CaptureRecord(
            capture_id=order.capture_id,
            slot=order.slot,
            origin="operator",
            label=order.label,
            note=order.note,
            requested_by=order.requested_by,
            requested_frames=order.frames,
            max_bytes=order.max_bytes,
            requested_at=order.requested_at,
            started_at=now,
        )
        problem = self._refusal(order.slot)
        if problem is not None:
            record.phase, record.status, record.reason, record.ended_at = "finished", "refused", problem, now
            self.store.create(record)
            self._event(record, "refused", "warning")
            return
        self.store.create(record)
        self._event(record, "started", "info")
        self._enqueue(record)

    def start_drift_capture(
        self,
        capture_id: str,
        slot: str,
        frames: int,
        max_bytes: int,
        selector: Selector,
        reason: str,
        who: str,
    ) -> bool:
        """Begin a capture of frames near the threshold and a random sample; False when the slot
        cannot be captured or already has a drift capture open or waiting."""
        with self._lock:
            pending = [self._open[slot].capture_id] if slot in self._open else []
            pending += list(self._waiting.get(slot, ()))
        if self._refusal(slot) is not None or any(self.store.get(c).origin == "drift" for c in pending):
            return False
        now = utcnow()
        record = CaptureRecord(
            capture_id=capture_id,
            slot=slot,
            origin="drift",
            note=wire_text(reason, 500),
            requested_by=who,
            requested_frames=frames,
            max_bytes=max_bytes,
            requested_at=now,
            started_at=now,
            selector=selector,
        )
        self.store.create(record)
        self._event(record, "started", "info")
        self._enqueue(record)
        return True

    def _refusal(self, slot: str) -> str | None:
        task = self._slot_tasks.get(slot)
        if task is None:
            return (
                f"slot {slot} is not on this gateway (slots: {', '.join(sorted(self._slot_tasks)) or 'none'})"
            )
        if task == "notes":
            return f"slot {slot} runs a text model; captures take camera frames"
        return None

    def _enqueue(self, record: CaptureRecord) -> None:
        with self._lock:
            self._waiting.setdefault(record.slot, deque()).append(record.capture_id)
            if record.slot not in self._open:
                self._next(record.slot)

    def _next(self, slot: str) -> None:
        """Open the slot's next waiting capture (under the lock)."""
        self._open.pop(slot, None)
        waiting = self._waiting.get(slot)
        if waiting:
            record = self.store.get(waiting.popleft())
            self._open[slot] = _Open(
                record.capture_id, record.requested_frames, len(record.files), record.selector
            )

    # ---- the inference path -----------------------------------------------------------------
    def observe(self, runner: Runner, frames: Sequence[Frame], predictions: Sequence[Prediction]) -> None:
        """Take the frames an open capture of ``runner``'s slot wants (inference thread)."""
        with self._lock:
            current = self._open.get(runner.slot)
            if current is None:
                return
            by_frame = {id(p.frame): p for p in predictions}
            for frame in frames:
                if current.taken >= current.wanted:
                    return
                prediction = by_frame.get(id(frame))
                if frame.image.size == 0 or not self._wanted(current.selector, prediction):
                    continue
                take = _Take(
                    current.capture_id,
                    frame,
                    runner.ref,
                    prediction.output.label if prediction else None,
                    prediction.output.score if prediction else None,
                )
                try:
                    self._queue.put_nowait(take)
                except queue.Full:
                    self.skipped += 1
                    continue
                current.taken += 1

    def _wanted(self, selector: Selector | None, prediction: Prediction | None) -> bool:
        if selector is None:
            return True
        probability = defect_probability(prediction) if prediction else None
        if probability is not None and abs(probability - 0.5) <= selector.near_threshold:
            return True
        return self._rng.random() < selector.sample_rate

    # ---- the recorder's thread --------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                take = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            try:
                self._write(take)
            except OSError as exc:  # a disk failure ends the capture, never the thread
                log.exception("captures: %s: cannot write a frame", take.capture_id)
                self._end(take.capture_id, "stopped", f"the gateway could not write a frame: {exc}")
            except Exception:  # noqa: BLE001 - one odd frame must not end the recorder for good
                log.exception("captures: %s: frame %s skipped", take.capture_id, take.frame.ref)
                self._give_back(take.capture_id)
            finally:
                self._queue.task_done()

    def _write(self, take: _Take) -> None:
        record = self.store.get(take.capture_id)
        if record.phase != "recording":
            return  # the capture ended while this frame waited
        ok, encoded = cv2.imencode(".png", take.frame.image, PNG_PARAMS)
        if not ok:
            log.warning(
                "captures: %s: frame %s could not be encoded; skipped", take.capture_id, take.frame.ref
            )
            self._give_back(take.capture_id)
            return
        png = encoded.tobytes()
        file = CaptureFile(
            name=f"{len(record.files) + 1:06d}.png",
            sha256=hashlib.sha256(png).hexdigest(),
            size_bytes=len(png),
            captured_at=take.frame.captured_at,
            source=take.frame.source,
            frame=take.frame.ref[:256],
            model_label=take.model_label,
            score=take.score,
        )
        try:
            record = self.store.add_frame(take.capture_id, png, file, take.model)
        except CaptureFull as exc:
            self._end(take.capture_id, "stopped", f"{exc} after {len(record.files)} frame(s)")
            return
        if len(record.files) >= record.requested_frames:
            self._end(take.capture_id, "complete", None)

    def _give_back(self, capture_id: str) -> None:
        """A taken frame that was not written: the capture takes another one instead."""
        with self._lock:
            for current in self._open.values():
                if current.capture_id == capture_id:
                    current.taken -= 1

    def _end(self, capture_id: str, status: CaptureStatus, reason: str | None) -> None:
        record = self.store.get(capture_id)
        final: CaptureStatus = "refused" if status == "stopped" and not record.files else status
        record = self.store.finish(capture_id, final, reason)
        self._event(record, final, "info" if final == "complete" else "warning")
        with self._lock:
            current = self._open.get(record.slot)
            if current is not None and current.capture_id == capture_id:
                self._next(record.slot)

    def _event(self, record: CaptureRecord, step: str, level: EventLevel) -> None:
        if step == "started":
            said = f"{record.requested_frames} frame(s) wanted ({record.origin})"
        else:
            said = f"{len(record.files)} of {record.requested_frames} frame(s)"
        report(self._emit, record, step, level, said + (f"; {record.reason}" if record.reason else ""))
