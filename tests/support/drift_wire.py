"""What a gateway's drift watch sends, as the cloud tests feed it to ingest: ``model_drift`` events
(details as ``edge_agent.runtime.drift_monitor.DriftEvaluation.details`` writes them) and
telemetry samples carrying the per-slot verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cloud.ingest.decode import Inbound
from protocol.drift import DRIFT_EVENT_KIND, IMAGE_SIGNALS, SCORE_SIGNAL
from protocol.messages import DriftState, EventBatch, EventValue, SlotDrift, Telemetry
from protocol.topics import Channel, TopicSpace
from tests.support.messages import backlog_telemetry, gateway_event, inbound

MODEL = "defect-patchcore 1.1.0"
THRESHOLD = 0.05
STATE_AFTER: dict[str, DriftState] = {"suspected": "suspected", "confirmed": "confirmed", "cleared": "ok"}


def drift_details(
    slot: str, transition: str, state: DriftState, moved: str, score_ratio: float | None, model: str = MODEL
) -> dict[str, EventValue]:
    """An event's details: every signal's statistic (0.5 when it moved, else 0) and threshold."""
    over = {part.partition(":")[0] for part in moved.split(",") if part}
    details: dict[str, EventValue] = {
        "slot": slot, "model": model, "transition": transition, "state": state, "moved": moved,
        "cause": "look" if over - {SCORE_SIGNAL} else ("scores" if over else ""), "window": 100,
        "frames": 460, "test": "ks+bulk", "false_alarm_rate": 0.001, "flagged_share": 1.0 if over else 0.01,
        "reference_flagged_share": 0.01,
    }  # fmt: skip
    for name in (*IMAGE_SIGNALS, SCORE_SIGNAL):
        details[f"{name}_statistic"] = 0.5 if name in over else 0.0
        details[f"{name}_threshold"] = THRESHOLD
    if score_ratio is not None:
        details.update(
            score_median=round(0.3 * score_ratio, 4), reference_score_median=0.3, score_ratio=score_ratio
        )
    return details


def drift_event(
    gateway_id: str,
    at: datetime,
    transition: str,
    *,
    slot: str = "defect",
    moved: str = "",
    score_ratio: float | None = None,
    model: str = MODEL,
) -> EventBatch:
    """A ``model_drift`` event of ``gateway_id`` at ``at`` (state follows from the transition)."""
    state = STATE_AFTER[transition]
    level = "warning" if state == "confirmed" else "info"
    message = f"slot {slot}: {model}: drift {transition}: {moved or 'nothing moved'}"
    details = drift_details(slot, transition, state, moved, score_ratio, model)
    return gateway_event(gateway_id, at, level, DRIFT_EVENT_KIND, message, details)


def drift_telemetry(
    gateway_id: str, at: datetime, slots: Sequence[tuple[str, DriftState, tuple[str, ...]]]
) -> Telemetry:
    """A telemetry sample at ``at`` whose ``drift`` lists (slot, state, moved signals)."""
    sample = backlog_telemetry(gateway_id, 0, at)
    drift = tuple(
        SlotDrift(slot=slot, state=state, moved=moved, ratio=10.0 if moved else 0.0, frames=100)
        for slot, state, moved in slots
    )
    return sample.model_copy(update={"drift": drift})


def as_inbound(topics: TopicSpace, message: EventBatch | Telemetry) -> Inbound:
    """``message`` as received on its gateway's channel."""
    channel = Channel.EVENTS if isinstance(message, EventBatch) else Channel.TELEMETRY
    return inbound(topics, message.gateway_id, channel, message)
