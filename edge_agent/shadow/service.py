"""The agent's shadow runs: one :class:`ShadowSlot` per model slot, and the writer of their captures."""

from __future__ import annotations

import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from edge_agent.captures import CaptureService
from edge_agent.outbox_streams import EventDraft
from edge_agent.shadow.capture import ShadowCaptures
from edge_agent.shadow.config import ShadowConfig
from edge_agent.shadow.metrics import ShadowMetrics
from edge_agent.shadow.slot import ShadowSlot


class ShadowService:
    """Built by the agent when OTA is on (challengers arrive with the desired state)."""

    def __init__(
        self,
        config: ShadowConfig,
        gateway_id: str,
        slots: list[str],
        registry: CollectorRegistry,
        emit: Callable[[EventDraft], None],
        captures: CaptureService | None,
        stop: threading.Event,
    ) -> None:
        self.captures: ShadowCaptures | None = None
        if captures is not None and config.capture.enabled:
            self.captures = ShadowCaptures(
                captures.store, config.capture, gateway_id, emit, captures.uploader.wake, stop
            )
        metrics = ShadowMetrics(registry)
        self.slots = {slot: ShadowSlot(slot, config, metrics, emit, self.captures) for slot in slots}

    def start(self) -> None:
        if self.captures is not None:
            self.captures.start()

    def stop(self, timeout: float) -> bool:
        """After the workers stopped: record every open window, then let the writer finish."""
        for shadow in self.slots.values():
            shadow.flush()
        return self.captures.join(timeout) if self.captures is not None else True
