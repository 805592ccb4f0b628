"""A shadow window's disagreeing frames as a capture (origin ``shadow``), written on a thread of its own.

The slot's worker offers each frame where champion and challenger disagree (:meth:`offer`, a
non-blocking put: a full queue skips the frame rather than delaying the champion) and closes the
window's capture when the window ends (:meth:`close`). The writer encodes PNGs into the gateway's
capture store, and once every offered frame is written finishes the capture, which the capture
uploader then sends like any other ([captures.md](../../docs/captures.md)). A capture still
recording at start-up belongs to a window a kill cut short: it is finished with what it holds.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import cv2

from edge_agent.captures.events import report
from edge_agent.captures.recorder import PNG_PARAMS
from edge_agent.captures.store import CaptureFull, CaptureRecord, CaptureStore
from edge_agent.frames import Frame
from edge_agent.outbox_streams import EventDraft, EventLevel
from edge_agent.shadow.config import ShadowCaptureConfig
from protocol.captures import CaptureFile, CaptureStatus
from protocol.messages import ModelRef, utcnow, wire_text

log = logging.getLogger(__name__)

QUEUE_FRAMES = 16


@dataclass(frozen=True)
class _Take:
    capture_id: str
    frame: Frame
    model: ModelRef
    label: str
    score: float


class ShadowCaptures:
    """Opens one capture per window with a disagreement, writes its frames, finishes it."""

    def __init__(
        self,
        store: CaptureStore,
        config: ShadowCaptureConfig,
        gateway_id: str,
        emit: Callable[[EventDraft], None],
        wake_uploader: Callable[[], None],
        stop: threading.Event,
    ) -> None:
        self.store = store
        self.config = config
        self._who = f"gateway:{gateway_id} (shadow)"
        self._emit = emit
        self._wake_uploader = wake_uploader
        self._stop = stop
        self._queue: queue.Queue[_Take] = queue.Queue(QUEUE_FRAMES)
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}  # capture id -> frames queued, not yet written
        self._closing: dict[str, int] = {}  # capture id -> frames offered in its window
        self._full: set[str] = set()
        self.skipped = 0  # frames offered while the queue was full
        self._thread = threading.Thread(target=self._run, name="shadow-captures", daemon=True)
        for record in store.in_phase("recording"):
            if record.origin == "shadow":
                self._finish(record.capture_id, len(record.files), "the agent restarted during its window")

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> bool:
        """After the stop event: writes what is queued, finishes closed windows, then ends."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        self._finish_closed()  # windows the agent's stop closed after the thread's last look
        return True

    def open(self, slot: str, note: str) -> str | None:
        """A new capture for a window's disagreeing frames; None when it cannot be kept on disk."""
        capture_id = f"cap-{uuid.uuid4().hex[:16]}"
        now = utcnow()
        record = CaptureRecord(
            capture_id=capture_id,
            slot=slot,
            origin="shadow",
            note=wire_text(note, 500),
            requested_by=self._who,
            requested_frames=self.config.frames,
            max_bytes=self.config.max_bytes,
            requested_at=now,
            started_at=now,
        )
        try:
            self.store.create(record)
        except OSError:
            log.exception("shadow: slot %s: cannot keep a capture of disagreements on disk", slot)
            return None
        with self._lock:
            self._pending[capture_id] = 0
        report(self._emit, record, "started", "info", "frames where champion and challenger disagree")
        return capture_id

    def offer(self, capture_id: str, frame: Frame, model: ModelRef, label: str, score: float) -> bool:
        """Queue one frame of the capture (worker thread; never blocks). False: skipped."""
        with self._lock:
            if capture_id in self._full:
                return False
            try:
                self._queue.put_nowait(_Take(capture_id, frame, model, label, score))
            except queue.Full:
                self.skipped += 1
                return False
            self._pending[capture_id] = self._pending.get(capture_id, 0) + 1
            return True

    def close(self, capture_id: str, offered: int) -> None:
        """The window ended: finish its capture once the ``offered`` frames queued are written."""
        with self._lock:
            self._closing[capture_id] = offered

    # ---- the writer's thread ----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                take = self._queue.get(timeout=0.2)
            except queue.Empty:
                self._finish_closed()
                if self._stop.is_set() and self._queue.empty():
                    return
                continue
            try:
                self._write(take)
            except Exception:  # noqa: BLE001 - one odd frame or a disk error must not end the writer
                log.exception("shadow: capture %s: frame %s not written", take.capture_id, take.frame.ref)
            finally:
                with self._lock:
                    self._pending[take.capture_id] -= 1
                self._queue.task_done()
            self._finish_closed()

    def _write(self, take: _Take) -> None:
        ok, encoded = cv2.imencode(".png", take.frame.image, PNG_PARAMS)
        if not ok:
            log.warning("shadow: capture %s: frame %s could not be encoded", take.capture_id, take.frame.ref)
            return
        png = encoded.tobytes()
        record = self.store.get(take.capture_id)
        file = CaptureFile(
            name=f"{len(record.files) + 1:06d}.png",
            sha256=hashlib.sha256(png).hexdigest(),
            size_bytes=len(png),
            captured_at=take.frame.captured_at,
            source=take.frame.source,
            frame=take.frame.ref[:256],
            model_label=take.label,
            score=take.score,
        )
        try:
            self.store.add_frame(take.capture_id, png, file, take.model)
        except CaptureFull as exc:
            log.info("shadow: capture %s: %s; its window keeps no more frames", take.capture_id, exc)
            with self._lock:
                self._full.add(take.capture_id)

    def _finish_closed(self) -> None:
        with self._lock:
            done = [(c, n) for c, n in self._closing.items() if self._pending.get(c, 0) == 0]
            for capture_id, _ in done:
                del self._closing[capture_id]
                self._pending.pop(capture_id, None)
                self._full.discard(capture_id)
        for capture_id, offered in done:
            self._finish(capture_id, offered, "frames were skipped (writer behind, or a byte cap)")

    def _finish(self, capture_id: str, offered: int, why_fewer: str) -> None:
        """The capture asked for the frames its window offered: complete when it holds them all."""
        record = self.store.get(capture_id)
        kept = len(record.files)
        status: CaptureStatus = (
            "complete" if kept == offered and kept > 0 else "stopped" if kept else "refused"
        )
        reason = (
            None if status == "complete" else f"{kept} of {offered} disagreeing frame(s) kept: {why_fewer}"
        )
        try:
            record = self.store.finish(capture_id, status, reason, requested_frames=max(offered, kept, 1))
        except OSError:
            log.exception("shadow: capture %s: cannot finish it on disk", capture_id)
            return
        level: EventLevel = "info" if status == "complete" else "warning"
        report(self._emit, record, status, level, f"{kept} of {offered} frame(s)")
        self._wake_uploader()
