"""Prometheus metrics of shadow runs, on the agent's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ShadowMetrics:
    """Frames compared and skipped per slot, and the agreement of the last window."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._compared = Counter(
            "shadow_frames_compared",
            "Frames the slot's challenger ran beside the champion",
            ["slot"],
            registry=registry,
        )
        self._skipped = Counter(
            "shadow_frames_skipped",
            "Frames the challenger did not run: budget (its time budget), backlog (the champion behind), "
            "error (the challenger raised)",
            ["slot", "reason"],
            registry=registry,
        )
        self._disagreements = Counter(
            "shadow_disagreements",
            "Compared frames where the two verdicts differ",
            ["slot"],
            registry=registry,
        )
        self._agreement = Gauge(
            "shadow_agreement",
            "Share of the last window's compared frames with the same verdict",
            ["slot"],
            registry=registry,
        )

    def compared(self, slot: str, frames: int, disagreements: int) -> None:
        if frames:
            self._compared.labels(slot).inc(frames)
        if disagreements:
            self._disagreements.labels(slot).inc(disagreements)

    def skipped(self, slot: str, reason: str, frames: int) -> None:
        if frames:
            self._skipped.labels(slot, reason).inc(frames)

    def agreement(self, slot: str, value: float | None) -> None:
        if value is not None:
            self._agreement.labels(slot).set(value)
