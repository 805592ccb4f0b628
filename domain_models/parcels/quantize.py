"""INT8 for the parcel detector: static QDQ calibrated on simulator frames, behind the FP32 gate."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt

from domain_models.common import GateResult, PipelineError, gate, quantize_static_qdq, session
from domain_models.parcels.data import PREPROCESSING, eval_config, targets_of, train_config
from edge_agent.runtime.preprocess import to_tensor
from simulators.parcel_line import ParcelLine

log = logging.getLogger(__name__)


def frames(
    configs_seed: int, lines: int, per_line: int, held_out: bool
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(inputs, parcel targets) of ``lines x per_line`` frames: training-style lines for calibration,
    held-out evaluation lines (seen settings) for the gate."""
    xs, ys = [], []
    for k in range(lines):
        cfg = (
            eval_config(configs_seed, 100 + k, unseen=False)
            if held_out
            else train_config(configs_seed + 77, k)
        )
        line = ParcelLine(cfg)
        for j in range(per_line):
            sim = line.frame(7 * j + 3)
            xs.append(to_tensor([sim.image], PREPROCESSING)[0])
            ys.append(targets_of(sim.parcel_mask, sim.damage_mask)[0])
    return np.stack(xs).astype(np.float32), np.stack(ys)


def parcel_iou(model: Path, inputs: npt.NDArray[np.float32], targets: npt.NDArray[np.float32]) -> float:
    """Pixel IoU of the parcel map at 0.5 against the rendered masks, pooled over frames."""
    sess = session(model, threads=2)
    name = sess.get_inputs()[0].name
    inter = union = 0.0
    for x, t in zip(inputs, targets, strict=True):
        p = np.asarray(sess.run(None, {name: x[None]})[0])[0, 0] > 0.5
        truth = t > 0.5
        inter += float((p & truth).sum())
        union += float((p | truth).sum())
    return inter / max(union, 1.0)


def quantize(
    fp32: Path, int8: Path, seed: int, tolerance_points: float = 1.0, calibration_frames: int = 48
) -> GateResult:
    """Write ``int8`` from ``fp32`` and gate it on held-out parcel IoU; refuse (delete) if it fails."""
    calib, _ = frames(seed, max(calibration_frames // 8, 1), 8, held_out=False)
    quantize_static_qdq(fp32, int8, [{"image": x[None]} for x in calib])
    inputs, targets = frames(seed, 4, 6, held_out=True)
    result = gate(
        "parcel_iou", parcel_iou(fp32, inputs, targets), parcel_iou(int8, inputs, targets), tolerance_points
    )
    log.info("INT8 gate: %s", result.describe())
    if not result.passed:
        int8.unlink(missing_ok=True)
        raise PipelineError(f"quantize {fp32.name}: INT8 refused: {result.describe()}")
    return result
