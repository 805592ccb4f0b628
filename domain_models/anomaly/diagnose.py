"""Why F1 at a few-dozen-image threshold cannot carry a 1-point gate: the card's measured figures.

Given the scores a :class:`~domain_models.anomaly.quantize.QuantizeResult` holds, compare the
operating point set from the first ``small`` held-out good images (the train/good split alone)
with the one set from every held-out image, for FP32 alone and for the FP32-INT8 pair.
"""

from __future__ import annotations

import numpy as np

from domain_models.anomaly.gate import PairedScores
from domain_models.anomaly.stats import operating_point, paired_f1_drop, spearman
from domain_models.common import markdown_table, threshold_at_false_reject


def diagnosis(scores: PairedScores, frr: float, small: int, draws: int = 1000) -> str:
    """Markdown: bootstrap intervals of threshold, F1 and false rejects, and rank correlations."""
    y = scores.truth
    n = len(scores.hold_fp32)
    sizes = [small, n] if 0 < small < n else [n]
    rows: list[list[object]] = []
    for size in sizes:
        op = operating_point(scores.hold_fp32[:size], scores.test_fp32, y, frr, draws=draws)
        pair = paired_f1_drop(
            scores.hold_fp32[:size],
            scores.hold_int8[:size],
            scores.test_fp32,
            scores.test_int8,
            y,
            frr,
            draws=draws,
        )
        rows.append(
            [
                size,
                f"{op.threshold.value:.3f} [{op.threshold.low:.3f}, {op.threshold.high:.3f}]",
                op.f1.points(),
                op.false_reject_rate.points(),
                pair.drop.points(),
            ]
        )
    table = markdown_table(
        [
            "held-out good",
            "FP32 threshold [95%]",
            "FP32 F1, points [95%]",
            "FP32 test false rejects, % [95%]",
            "F1 drop FP32-INT8, each at its own threshold, points [95%]",
        ],
        rows,
    )
    lines = [table]
    if len(sizes) == 2:
        small_thr = threshold_at_false_reject(scores.hold_fp32[:small], frr)
        rest = scores.hold_fp32[small:]
        realised = float((rest >= small_thr).mean())
        lines.append(
            f"- The threshold from {small} images rejects {realised:.2%} of the other {len(rest)} held-out "
            f"good images (target {frr:.0%}): with fewer than {int(np.ceil(1 / frr))} images a "
            f"{frr:.0%} threshold is simply the largest good score."
        )
    good = spearman(scores.hold_fp32, scores.hold_int8)
    test = spearman(scores.test_fp32, scores.test_int8)
    lines.append(
        f"- INT8 scores are a near-monotone map of FP32 scores: rank correlation {test:.4f} on test "
        f"images, {good:.4f} among held-out good images alone (a narrow score range, where small "
        "shifts reorder the images that set the threshold)."
    )
    return "\n".join(lines) + "\n"
