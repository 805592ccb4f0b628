"""Post-training calibration on frames neither trained on nor evaluated: size bias and damage cut-off."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from domain_models.parcels.data import train_config
from edge_agent.runtime.parcels import ParcelRunner
from protocol.inference import DAMAGE_MAP_KEY, LENGTH_OFFSET_KEY, WIDTH_OFFSET_KEY
from simulators.parcel_line import ParcelLine

log = logging.getLogger(__name__)

CALIBRATION_SEED_OFFSET = 55
MIN_DAMAGE_BALANCED_ACCURACY = 0.75
DAMAGE_OFF = 2.0  # a cut-off no probability reaches: the damage flag is never raised  # lines (seed + 55) * 1000 + k: disjoint from training and evaluation


def calibrate(manifest: Path, seed: int, lines: int = 6, per_line: int = 6) -> dict[str, float]:
    """The manifest's thresholds with the measured size offsets and a balanced damage cut-off."""
    runner = ParcelRunner(manifest, "calibrate")
    size_err: list[tuple[float, float]] = []
    scores: list[tuple[float, bool]] = []
    for k in range(lines):
        line = ParcelLine(train_config(seed + CALIBRATION_SEED_OFFSET, k))
        centre = runner.line_x * line.config.width
        indices = [i + 1 for i in range(300) if line.crossings(centre, i, i + 2)][:per_line]
        for i in indices:
            frame = line.frame(i)
            for det in runner.detect(frame.image):
                truth = min(
                    frame.truth.parcels,
                    key=lambda p: np.hypot(p.center[0] - det.center[0], p.center[1] - det.center[1]),
                )
                if np.hypot(truth.center[0] - det.center[0], truth.center[1] - det.center[1]) > 20:
                    continue
                if abs(truth.center[0] - centre) < 200:  # wholly in view
                    size_err.append((det.size[0] - truth.size_px[0], det.size[1] - truth.size_px[1]))
                    scores.append((det.damage, truth.damage != "none"))
    thresholds = dict(runner.manifest.thresholds)
    if len(size_err) < 5:
        log.warning("calibration: only %d parcels measured; size offsets unchanged", len(size_err))
        return thresholds
    err = np.array(size_err)
    thresholds[LENGTH_OFFSET_KEY] = round(
        thresholds.get(LENGTH_OFFSET_KEY, 0.0) + float(np.median(err[:, 0])), 3
    )
    thresholds[WIDTH_OFFSET_KEY] = round(
        thresholds.get(WIDTH_OFFSET_KEY, 0.0) + float(np.median(err[:, 1])), 3
    )
    values = np.array([s for s, _ in scores])
    damaged = np.array([d for _, d in scores])
    if damaged.any() and (~damaged).any():
        # The cut-off with the best balanced accuracy, placed midway between neighbouring scores.
        cuts = np.unique(values)
        mids = np.concatenate([(cuts[:-1] + cuts[1:]) / 2, [cuts[-1] + 1e-3]])
        bal = [((values[damaged] >= c).mean() + (values[~damaged] < c).mean()) / 2 for c in mids]
        best = float(max(bal))
        if best >= MIN_DAMAGE_BALANCED_ACCURACY:
            thresholds[DAMAGE_MAP_KEY] = round(float(mids[int(np.argmax(bal))]), 4)
            log.info(
                "calibration: damage cut-off %.4f (balanced accuracy %.3f)", thresholds[DAMAGE_MAP_KEY], best
            )
        else:  # a flag that is wrong this often would only send good boxes to rework
            thresholds[DAMAGE_MAP_KEY] = DAMAGE_OFF
            log.warning("calibration: damage flag disabled, balanced accuracy only %.3f", best)
    log.info("calibration on %d parcels: size offsets %.2f / %.2f px", len(err),
             thresholds[LENGTH_OFFSET_KEY], thresholds[WIDTH_OFFSET_KEY])  # fmt: skip
    return thresholds
