"""MODEL_CARD.md of the parcel detector, from measured figures only.

The words are in ``domain_models/templates/parcels_card.md.j2`` (and ``parcels_damage.md.j2``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from domain_models.cards import cpu_count, render
from domain_models.common import LATENCY_HEADERS, GateResult
from domain_models.parcels.calibrate import MIN_DAMAGE_BALANCED_ACCURACY
from domain_models.parcels.card_damage import damage_figures

if TYPE_CHECKING:
    from domain_models.parcels.damage import DamageRelease

ROWS = (
    ("exact_count_rate", "sequences counted exactly"),
    ("count_abs_error_rate", "count error: sum of abs(counted - true) / true"),
    ("recall", "true parcels counted and matched"),
    ("precision", "counts that match a true parcel"),
    ("barcode_read_rate", "barcode read correctly (of matched parcels)"),
    ("barcode_misread_rate", "barcode read WRONG"),
    ("footprint_mae_mm", "footprint error, mean (mm, length and width)"),
    ("footprint_p95_mm", "footprint error, p95 (mm)"),
    ("damage_accuracy", "damage flag accuracy"),
    ("damage_recall", "damaged parcels flagged"),
    ("routing_accuracy", "sort lane equals the lane of the true facts"),
    ("ms_per_frame", "runner time per frame, 1 thread (ms)"),
)


def write_card(
    path: Path,
    evals: Mapping[str, Mapping[str, float]],
    gate_result: GateResult,
    latency: list[list[str]],
    train_meta: Mapping[str, object],
    params: int,
    thresholds: Mapping[str, float],
    damage: DamageRelease | None = None,
) -> None:
    """Write the card: data, method, per-condition metrics (FP32 and INT8), gate, latency, limits."""
    cols = list(evals)
    text = render(
        "parcels_card.md.j2",
        train=train_meta,
        frames_per_sequence=int(evals[cols[0]].get("frames_per_sequence", 0)),
        params=params,
        cpus=cpu_count(),
        cols=cols,
        rows=[[label, *(f"{evals[c].get(key, float('nan')):.3f}" for c in cols)] for key, label in ROWS],
        gate=gate_result,
        thresholds=thresholds,
        min_map_balanced_accuracy=MIN_DAMAGE_BALANCED_ACCURACY,
        latency_headers=LATENCY_HEADERS,
        latency=latency,
        **(damage_figures(damage) if damage is not None else {"damage": None}),
    )
    path.write_text(text)
