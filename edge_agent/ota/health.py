"""What a slot's models did lately, per model, for the health window and its baseline."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_agent.config import OtaConfig
from edge_agent.runtime import Prediction
from protocol.ota import HEALTH_HISTORY, SlotHealth
from protocol.rate_shift import RateShift, parts_behind

MODELS_KEPT = 4


@dataclass(slots=True)
class _Stats:
    inferences: int = 0
    errors: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=HEALTH_HISTORY))
    defects: deque[bool] = field(default_factory=lambda: deque(maxlen=HEALTH_HISTORY))
    confidences: deque[float] = field(default_factory=lambda: deque(maxlen=HEALTH_HISTORY))


class SlotMonitor:
    """Fed by the slot's inference worker; keyed by model sha256 so a swap between two batches
    can never mix the old model's results into the new model's window."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_model: OrderedDict[str, _Stats] = OrderedDict()

    def _stats(self, sha256: str) -> _Stats:
        stats = self._by_model.get(sha256)
        if stats is None:
            stats = self._by_model[sha256] = _Stats()
            while len(self._by_model) > MODELS_KEPT:
                self._by_model.popitem(last=False)
        return stats

    def batch(self, sha256: str, predictions: Sequence[Prediction]) -> None:
        """Record one micro-batch's predictions."""
        with self._lock:
            stats = self._stats(sha256)
            stats.inferences += len(predictions)
            for p in predictions:
                stats.latencies.append(p.latency_ms)
                stats.confidences.append(p.output.score)
                is_defect = getattr(p.output, "is_defect", None)
                if is_defect is not None:
                    stats.defects.append(bool(is_defect))

    def failure(self, sha256: str, frames: int) -> None:
        """Record a micro-batch that raised."""
        with self._lock:
            self._stats(sha256).errors += frames

    def restart(self, sha256: str) -> None:
        """Forget a model's history (a fresh health window)."""
        with self._lock:
            self._by_model.pop(sha256, None)

    def health(self, sha256: str) -> SlotHealth:
        """The model's counters and output distribution so far."""
        with self._lock:
            s = self._by_model.get(sha256) or _Stats()
            p95 = float(np.percentile(list(s.latencies), 95)) if s.latencies else None
            return SlotHealth(
                inferences=s.inferences,
                errors=s.errors,
                p95_latency_ms=p95,
                defect_rate=sum(s.defects) / len(s.defects) if s.defects else None,
                mean_confidence=float(np.mean(list(s.confidences))) if s.confidences else None,
            )


def judge(new: SlotHealth, baseline: SlotHealth | None, cfg: OtaConfig) -> str | None:
    """The reason ``new`` fails the health gates, or None when it passes (or cannot be judged yet)."""
    total = new.inferences + new.errors
    # Judged however few: a model that raises is broken, not unlucky.
    if total and new.errors / total > cfg.max_error_rate:
        return f"error rate {new.errors}/{total} above {cfg.max_error_rate:.2%}"
    if new.inferences < cfg.min_window_inferences:
        return None  # a p95 of a handful of inferences is their slowest, a rate of them is noise
    if new.p95_latency_ms is not None and new.p95_latency_ms > cfg.max_p95_latency_ms:
        return f"p95 latency {new.p95_latency_ms:.1f} ms above {cfg.max_p95_latency_ms} ms"
    if baseline is None or baseline.inferences < cfg.min_baseline_inferences:
        return None  # no trustworthy previous distribution to compare with
    if new.defect_rate is not None and baseline.defect_rate is not None:
        shift = RateShift(
            before=baseline.defect_rate,
            parts_before=parts_behind(baseline.inferences),
            now=new.defect_rate,
            parts_now=parts_behind(new.inferences),
        )
        if shift.beyond(cfg.max_defect_rate_shift):
            return (
                f"defect rate {shift.describe()}: beyond ±{100 * cfg.max_defect_rate_shift:g} pts "
                "and sampling noise"
            )
    if new.mean_confidence is not None and baseline.mean_confidence is not None:
        change = abs(new.mean_confidence - baseline.mean_confidence)
        if change > cfg.max_confidence_shift:
            return (
                f"mean confidence {new.mean_confidence:.3f} vs {baseline.mean_confidence:.3f} for the "
                f"previous version: shift {change:.3f} above {cfg.max_confidence_shift}"
            )
    return None
