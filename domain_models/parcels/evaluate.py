"""Held-out evaluation: whole simulated sequences through the deployed runner (detector + line logic)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from domain_models.parcels.data import eval_config
from edge_agent.frames import Frame
from edge_agent.runtime.parcels import ParcelRunner
from protocol.messages import ParcelOutput, utcnow
from simulators.parcel_line import ParcelLine, ParcelTruth

log = logging.getLogger(__name__)

MATCH_PX = 40.0  # a counted parcel matches the true box whose centre is this close


@dataclass(frozen=True)
class SequenceResult:
    """One sequence: what was counted against the truth."""

    true_count: int
    counted: int
    matched: list[tuple[ParcelOutput, ParcelTruth]]
    frames: int
    seconds: float


def run_sequence(runner: ParcelRunner, line: ParcelLine, frames: int, source: str) -> SequenceResult:
    """Feed frames ``0..frames-1`` of ``line`` to a fresh tracker and match its counts to the truth."""
    runner.reset(source)
    width = line.config.width
    line_px = runner.line_x * width
    window = runner.birth_window * width
    # The truth the runner is asked for: centres crossing the line, or already just past it at start.
    truth_ids = {
        k for k in line.entered(frames - 1)
        if line.center_x(k, 0) < line_px + window and line.center_x(k, frames - 1) >= line_px
    }  # fmt: skip
    matched: list[tuple[ParcelOutput, ParcelTruth]] = []
    counted = 0
    seconds = 0.0
    for index in range(frames):
        sim = line.frame(index)
        started = time.perf_counter()
        preds = runner.infer([Frame(source, str(index), utcnow(), sim.image)])
        seconds += time.perf_counter() - started
        for pred in preds:
            out = pred.output
            assert isinstance(out, ParcelOutput)  # noqa: S101 - the runner's own contract
            counted += 1
            if out.box is None:
                continue
            cx, cy = out.box.x + out.box.w / 2, out.box.y + out.box.h / 2
            near = [p for p in sim.truth.parcels if np.hypot(p.center[0] - cx, p.center[1] - cy) < MATCH_PX]
            if near and near[0].parcel_id in truth_ids:
                matched.append((out, near[0]))
    return SequenceResult(len(truth_ids), counted, matched, frames, seconds)


def summarize(results: list[SequenceResult], lanes_of: ParcelRunner) -> dict[str, float]:
    """Exact-count rate, count error, barcode read rate, footprint error, damage and routing figures."""
    pairs = [m for r in results for m in r.matched]
    true_total = sum(r.true_count for r in results)
    counted = sum(r.counted for r in results)
    errs = np.array([[abs(o.length_mm - t.length_mm), abs(o.width_mm - t.width_mm)]  # type: ignore[operator]
                     for o, t in pairs]).ravel() if pairs else np.array([np.nan])  # fmt: skip
    reads = [o.barcode == t.barcode for o, t in pairs]
    wrong = [o.barcode is not None and o.barcode != t.barcode for o, t in pairs]
    dmg_true = np.array([t.damage != "none" for _, t in pairs])
    dmg_pred = np.array([o.damaged for o, _ in pairs])
    lanes = [o.label == lanes_of.routes.route(t.barcode, t.length_mm, t.damage != "none") for o, t in pairs]
    frames = sum(r.frames for r in results)
    return {
        "sequences": float(len(results)),
        "true_parcels": float(true_total),
        "exact_count_rate": float(np.mean([r.counted == r.true_count for r in results])),
        "count_abs_error_rate": sum(abs(r.counted - r.true_count) for r in results) / max(true_total, 1),
        "recall": len(pairs) / max(true_total, 1),
        "precision": len(pairs) / max(counted, 1),
        "barcode_read_rate": float(np.mean(reads)) if reads else 0.0,
        "barcode_misread_rate": float(np.mean(wrong)) if wrong else 0.0,
        "footprint_mae_mm": float(np.mean(errs)),
        "footprint_p95_mm": float(np.percentile(errs, 95)),
        "damage_accuracy": float(np.mean(dmg_true == dmg_pred)) if pairs else 0.0,
        "damage_recall": float(dmg_pred[dmg_true].mean()) if dmg_true.any() else float("nan"),
        "routing_accuracy": float(np.mean(lanes)) if lanes else 0.0,
        "ms_per_frame": 1000.0 * sum(r.seconds for r in results) / max(frames, 1),
    }


def evaluate(
    manifest: Path, seed: int, sequences: int, frames: int, unseen: bool, threads: int = 1
) -> dict[str, float]:
    """Metrics of the model at ``manifest`` on held-out lines (``unseen``: other belt, light, sizes)."""
    runner = ParcelRunner(manifest, "eval", threads)
    results = []
    for k in range(sequences):
        line = ParcelLine(eval_config(seed, k, unseen))
        results.append(run_sequence(runner, line, frames, f"seq-{k}"))
        log.info("sequence %d%s: %d counted, %d true", k, " (unseen)" if unseen else "",
                 results[-1].counted, results[-1].true_count)  # fmt: skip
    return summarize(results, runner)
