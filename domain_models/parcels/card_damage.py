"""The damage crop classifier's part of MODEL_CARD.md: data, method, per-parcel figures, decision."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain_models.common import markdown_table
from domain_models.parcels.damage_data import DAMAGE_RATE, EVAL_SPEED, TRAIN_SPEED
from domain_models.parcels.damage_eval import (
    MAX_CALIBRATION_FALSE_DAMAGE,
    SHIP_MAX_FALSE_DAMAGE,
    SHIP_MIN_BALANCED_ACCURACY,
)
from edge_agent.runtime.parcel_damage import CROP_SIZE

if TYPE_CHECKING:
    from domain_models.parcels.damage import DamageRelease

ROWS = (
    ("parcels", "parcels (each the mean of its crops)", "{:.0f}"),
    ("damaged_parcels", "of which damaged", "{:.0f}"),
    ("balanced_accuracy", "balanced accuracy", "{:.3f}"),
    ("precision", "precision of 'damaged'", "{:.3f}"),
    ("recall", "recall of 'damaged'", "{:.3f}"),
    ("false_damage_rate", "false-damage rate on intact parcels", "{:.3f}"),
    ("auc", "ROC AUC (threshold-free)", "{:.3f}"),
)


def damage_section(damage: DamageRelease) -> tuple[str, str]:
    """(card section, the 'Limits' bullet) for the crop classifier, from its measured figures."""
    m = damage.meta
    cols = list(damage.measured)
    rows = [[label, *(fmt.format(damage.measured[c].get(key, float("nan"))) for c in cols)]
            for key, label, fmt in ROWS]  # fmt: skip
    verdict = "ON" if damage.on else "OFF"
    text = f"""
## Damage crop classifier (`parcel-damage-*.onnx`, shipped only when the flag is ON)
Crops of each parcel cut along its oriented box, rotated upright and resized to
{CROP_SIZE[0]}x{CROP_SIZE[1]}; a tiny CNN ({m.get("params", 0):,} parameters, mean + max pooled)
gives P(damaged). Training: {m.get("train_crops")} crops ({m.get("train_damaged")} damaged) along the
true boxes (jittered like the detector's) of {m.get("lines")} lines x {m.get("frames")} frames, seen
belts and lights, {DAMAGE_RATE:.0%} damaged, belt at {TRAIN_SPEED} px/frame so most crops are of
different boxes; {m.get("steps")} steps, batch {m.get("batch")}, flips and colour jitter, with the
rendered damage mask (stride 16) as a second, training-only target that says where to look;
{m.get("train_s")} s on one thread of a shared CPU. Calibration ({m.get("calibration_lines")} lines,
seen settings) and test ({m.get("test_lines")} lines per condition) crops are cut along the
**detector's** boxes, {m.get("eval_frames")} frames per line at {EVAL_SPEED} px/frame, {DAMAGE_RATE:.0%}
damaged; a parcel's score is the mean over its crops, as in the runner. Cut-off
**{damage.cut:.4f}**, chosen on the calibration lines only: best balanced accuracy flagging at most
{MAX_CALIBRATION_FALSE_DAMAGE:.0%} of intact boxes. Precision is at 50 % prevalence; on a line
with 15 % damaged boxes it is lower for the same error rates.

{markdown_table(["per parcel", *cols], rows)}
INT8 gate (per-parcel AUC, held-out seen): {damage.gate.result.describe()}.
**Damage flag: {verdict}** (ships ON only if FP32 balanced accuracy >= {SHIP_MIN_BALANCED_ACCURACY}
and false-damage <= {SHIP_MAX_FALSE_DAMAGE:.0%} on both seen and unseen test lines).
"""
    if damage.on:
        note = (
            f"- Damage: the crop classifier flags a parcel when its mean crop score reaches "
            f"{damage.cut:.4f} (`thresholds.damage_crop`); the detector's damage map is not used."
        )
    else:
        note = (
            "- **The damage flag is OFF in this release**: the crop classifier did not reach the bar above "
            "on held-out parcels (figures in the damage table), so it is not shipped and no box is flagged."
        )
    return text, note
