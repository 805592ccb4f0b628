"""The damage crop classifier's figures for MODEL_CARD.md: data, method, per-parcel table, decision.

The words are in ``domain_models/templates/parcels_damage.md.j2``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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


def damage_figures(damage: DamageRelease) -> dict[str, object]:
    """The damage section's figures: the release, its per-parcel table and the settings it used."""
    cols = list(damage.measured)
    rows = [[label, *(fmt.format(damage.measured[c].get(key, float("nan"))) for c in cols)]
            for key, label, fmt in ROWS]  # fmt: skip
    return {
        "damage": damage,
        "damage_cols": cols,
        "damage_rows": rows,
        "crop_size": CROP_SIZE,
        "damage_rate": DAMAGE_RATE,
        "train_speed": TRAIN_SPEED,
        "eval_speed": EVAL_SPEED,
        "max_calibration_false_damage": MAX_CALIBRATION_FALSE_DAMAGE,
        "ship_min_balanced_accuracy": SHIP_MIN_BALANCED_ACCURACY,
        "ship_max_false_damage": SHIP_MAX_FALSE_DAMAGE,
    }
