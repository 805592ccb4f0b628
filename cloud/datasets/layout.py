"""The MVTec AD layout of a dataset's export: defined in :mod:`protocol.dataset_layout`, which the
trainer's ``--dataset`` download applies too, so both place every file alike."""

from __future__ import annotations

from protocol.dataset_layout import (
    HOLDOUT_EVERY,
    MIN_TRAIN_GOOD,
    Placed,
    effective_label,
    mvtec_layout,
    shortfall,
)

__all__ = ["HOLDOUT_EVERY", "MIN_TRAIN_GOOD", "Placed", "effective_label", "mvtec_layout", "shortfall"]
