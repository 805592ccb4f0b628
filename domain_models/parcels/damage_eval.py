"""Per-parcel figures of the damage classifier, its cut-off, its INT8 gate, and whether it ships ON.

A parcel's score is the mean of its crops' scores, as in the runner. The cut-off is chosen on the
calibration lines only; test lines (seen and unseen settings) are measured with it afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from domain_models.common import GateResult, gate, quantize_static_qdq, roc_auc, session
from domain_models.parcels.damage_data import Crops
from edge_agent.runtime.parcel_damage import INPUT, OUTPUT, to_batch

log = logging.getLogger(__name__)

MAX_CALIBRATION_FALSE_DAMAGE = 0.01  # the cut-off may flag at most this share of intact calibration boxes
SHIP_MIN_BALANCED_ACCURACY = 0.9  # the flag ships ON only if every test condition reaches both
SHIP_MAX_FALSE_DAMAGE = 0.02


def crop_scores(model: Path, crops: Crops, threads: int = 2) -> npt.NDArray[np.float64]:
    """P(damaged) per crop from an ONNX classifier, in batches of 64."""
    sess = session(model, threads)
    out: list[np.ndarray] = []
    for start in range(0, len(crops), 64):
        batch = to_batch(list(crops.images[start : start + 64]))
        out.append(np.asarray(sess.run([OUTPUT.name], {INPUT.name: batch})[0]).reshape(-1))
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def per_parcel(
    scores: npt.NDArray[np.float64], crops: Crops
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """(mean score, damaged) per parcel."""
    keys, inverse = np.unique(crops.parcels, return_inverse=True)
    sums = np.bincount(inverse, weights=scores, minlength=len(keys))
    counts = np.bincount(inverse, minlength=len(keys))
    labels = np.zeros(len(keys), bool)
    labels[inverse] = crops.labels
    return sums / np.maximum(counts, 1), labels


def figures(scores: npt.NDArray[np.float64], labels: npt.NDArray[np.bool_], cut: float) -> dict[str, float]:
    """Balanced accuracy, precision/recall of 'damaged', false-damage rate on intact, AUC, counts."""
    flagged = scores >= cut
    recall = float(flagged[labels].mean()) if labels.any() else float("nan")
    false_damage = float(flagged[~labels].mean()) if (~labels).any() else float("nan")
    return {
        "parcels": float(len(labels)),
        "damaged_parcels": float(labels.sum()),
        "balanced_accuracy": (recall + 1.0 - false_damage) / 2.0,
        "precision": float(labels[flagged].mean()) if flagged.any() else 0.0,
        "recall": recall,
        "false_damage_rate": false_damage,
        "auc": roc_auc(labels, scores) if labels.any() and (~labels).any() else float("nan"),
    }


def choose_cut(scores: npt.NDArray[np.float64], labels: npt.NDArray[np.bool_]) -> float:
    """The cut-off of best balanced accuracy among those flagging at most 1 % of intact boxes
    (a false flag sends a good box to rework); where several tie, the middle of their range, so
    the margin to both classes is widest."""
    if not labels.any() or labels.all():
        raise ValueError(
            f"choosing a damage cut-off needs both classes, got {int(labels.sum())} damaged "
            f"of {len(labels)} calibration parcels"
        )
    values = np.unique(scores)
    cuts = np.concatenate([(values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    bal = np.array([figures(scores, labels, float(c))["balanced_accuracy"] for c in cuts])
    allowed = np.array([figures(scores, labels, float(c))["false_damage_rate"] for c in cuts])
    allowed = allowed <= MAX_CALIBRATION_FALSE_DAMAGE
    if not allowed.any():
        return round(float(cuts[-1]), 4)
    best = bal[allowed].max()
    tied = cuts[allowed & (bal >= best - 1e-9)]
    # A tie spans neighbouring midpoints; their middle lies between the two classes' scores.
    low = float(values[values < tied.min()].max()) if (values < tied.min()).any() else float(tied.min())
    high = float(values[values > tied.max()].min()) if (values > tied.max()).any() else float(tied.max())
    cut = round((low + high) / 2, 4)
    # Rounding must not move the cut-off past a score: when no cut flags few enough intact boxes
    # but flagging none, high is the top score + 1e-6, and a cut rounded down flags that box again.
    return cut if low < cut <= high else (low + high) / 2


def ships_on(measured: dict[str, dict[str, float]]) -> bool:
    """Whether the flag is clearly useful on every held-out condition."""
    return all(
        m["balanced_accuracy"] >= SHIP_MIN_BALANCED_ACCURACY
        and m["false_damage_rate"] <= SHIP_MAX_FALSE_DAMAGE
        for m in measured.values()
    )


@dataclass(frozen=True)
class DamageGate:
    """The INT8 classifier against FP32 on held-out parcels; ``int8`` is None when refused."""

    result: GateResult
    int8: Path | None


def quantize(
    fp32: Path, int8: Path, calibration: Crops, held_out: Crops, tolerance_points: float
) -> DamageGate:
    """Static QDQ INT8 (per-channel) calibrated on calibration crops, gated on per-parcel AUC of
    held-out crops; a refused INT8 file is deleted and the figures logged."""
    step = max(len(calibration) // 64, 1)
    feeds = [{INPUT.name: to_batch([img])} for img in calibration.images[::step][:64]]
    quantize_static_qdq(fp32, int8, feeds)

    def auc(model: Path) -> float:
        scores, labels = per_parcel(crop_scores(model, held_out), held_out)
        return roc_auc(labels, scores)

    result = gate("damage_parcel_auc", auc(fp32), auc(int8), tolerance_points)
    log.info("damage INT8 gate: %s", result.describe())
    if not result.passed:
        int8.unlink(missing_ok=True)
        log.warning("damage classifier INT8 refused: %s", result.describe())
        return DamageGate(result, None)
    return DamageGate(result, int8)
