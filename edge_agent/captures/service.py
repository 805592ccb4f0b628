"""Captures on the gateway: orders from the cloud in, frames to disk, uploads out.

The agent builds one :class:`CaptureService` when ``captures.enabled``; it follows the retained
capture orders (``<gw>/captures``), hands the inference workers the recorder, and uploads on its
own thread. :meth:`CaptureService.capture_on_drift` is the drift monitor's hook: the agent calls
it (through :meth:`CaptureService.on_event`) when a slot's drift is confirmed and
``captures.on_drift.enabled`` is set.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from edge_agent.captures.cloud_api import CaptureApi
from edge_agent.captures.config import CaptureConfig
from edge_agent.captures.recorder import CaptureRecorder
from edge_agent.captures.store import CaptureStore, Selector
from edge_agent.captures.uploader import Uploader
from edge_agent.outbox_streams import EventDraft
from protocol.captures import CaptureOrders
from protocol.drift import DRIFT_EVENT_KIND
from protocol.messages import WireError, decode

log = logging.getLogger(__name__)


class CaptureService:
    """The store, the recorder and the uploader of one gateway."""

    def __init__(
        self,
        config: CaptureConfig,
        state_dir: Path,
        identity: tuple[str, str, str],
        slot_tasks: dict[str, str],
        emit: Callable[[EventDraft], None],
        stop: threading.Event,
    ) -> None:
        self.config = config
        self.gateway_id = identity[0]
        self.store = CaptureStore(config.store_dir(state_dir), config.max_bytes)
        config.token()  # a gateway without a usable token does not start: the config is wrong
        api = CaptureApi(config.api_url or "", config.token, config.timeout_s)
        self.recorder = CaptureRecorder(self.store, slot_tasks, self._emit_and_wake, stop)
        self.uploader = Uploader(self.store, api, config, identity, emit, stop)
        self._emit = emit
        self._revision = 0
        self._lock = threading.Lock()

    def _emit_and_wake(self, draft: EventDraft) -> None:
        self._emit(draft)
        if draft.details.get("step") in ("complete", "stopped", "refused"):
            self.uploader.wake()

    def start(self) -> None:
        self.recorder.start()
        self.uploader.start()

    def join(self, timeout: float) -> bool:
        """After the stop event: the recorder writes what it queued, the uploader stops."""
        recorded = self.recorder.join(timeout)
        return self.uploader.join(timeout) and recorded

    def on_orders(self, payload: bytes) -> None:
        """Link callback: start each order not seen before (a repeated or older document changes nothing)."""
        if not payload:
            return  # a cleared retained message
        try:
            document = decode(CaptureOrders, payload)
        except WireError as exc:
            log.warning("captures: bad capture orders ignored: %s", exc.reason)
            return
        if document.gateway_id != self.gateway_id:
            log.warning("captures: orders for gateway %s on my topic ignored", document.gateway_id)
            return
        with self._lock:
            if document.revision < self._revision:
                return
            self._revision = document.revision
            for order in document.orders:
                try:
                    self.recorder.start_order(order)
                except OSError:
                    log.exception("captures: %s: cannot keep the order on disk", order.capture_id)

    def on_event(self, draft: EventDraft) -> None:
        """Sees the agent's events: a confirmed drift starts an automatic capture when configured."""
        details = draft.details
        if (
            self.config.on_drift.enabled
            and draft.kind == DRIFT_EVENT_KIND
            and details.get("transition") == "confirmed"
            and isinstance(details.get("slot"), str)
        ):
            self.capture_on_drift(str(details["slot"]), draft.message)

    def capture_on_drift(self, slot: str, reason: str) -> str | None:
        """Capture ``slot``'s frames near the threshold and a random sample of the rest, under the
        ``captures.on_drift`` limits; the capture id, or None when the slot already has one open."""
        cfg = self.config.on_drift
        capture_id = f"cap-{uuid.uuid4().hex[:16]}"
        selector = Selector(near_threshold=cfg.near_threshold, sample_rate=cfg.sample_rate)
        who = f"gateway:{self.gateway_id} (drift)"
        try:
            started = self.recorder.start_drift_capture(
                capture_id, slot, cfg.frames, cfg.max_bytes, selector, reason, who
            )
        except OSError:
            log.exception("captures: slot %s: cannot keep a drift capture on disk", slot)
            return None
        return capture_id if started else None
