"""The shared helpers the three domains rely on: metrics, calibration, the gate, pinned weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from domain_models.common import (
    PipelineError,
    gate,
    markdown_table,
    precision_recall_f1,
    roc_auc,
    threshold_at_false_reject,
    verify_pinned,
)


def test_roc_auc_matches_hand_computed_values() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1], [0.2, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5  # ties average, never flatter
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([1, 1], [0.1, 0.2])


def test_threshold_rejects_at_most_the_target_share_of_good_scores() -> None:
    good = np.arange(100, dtype=np.float64)
    for frr in (0.0, 0.01, 0.05, 0.2):
        thr = threshold_at_false_reject(good, frr)
        assert (good >= thr).mean() <= frr
        assert (good >= np.nextafter(thr, -np.inf) - 1.0).mean() > frr  # and no stricter than needed
    with pytest.raises(PipelineError, match="at least one"):
        threshold_at_false_reject([], 0.01)


def test_precision_recall_f1_at_a_decision() -> None:
    prf = precision_recall_f1([1, 1, 0, 0], [1, 0, 1, 0])
    assert (prf.precision, prf.recall, prf.f1, prf.support) == (0.5, 0.5, 0.5, 2)


def test_gate_passes_within_tolerance_and_refuses_beyond() -> None:
    assert gate("AUROC", 0.95, 0.945, 1.0).passed
    refused = gate("AUROC", 0.95, 0.93, 1.0)
    assert not refused.passed
    assert "FP32 0.9500" in refused.describe()
    assert "INT8 0.9300" in refused.describe()
    assert not gate("AUROC", 0.9, 0.95, -100.0).passed  # impossible: INT8 must win by 100 points


def test_weights_with_another_hash_are_refused(tmp_path: Path) -> None:
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"tampered")
    with pytest.raises(PipelineError, match="refusing"):
        verify_pinned(weights, "0" * 64, "Lite0")
    with pytest.raises(PipelineError, match="not found"):
        verify_pinned(tmp_path / "missing.pth", "0" * 64, "Lite0")


def test_lite0_features_keep_relu6_and_the_pinned_weights() -> None:
    import torch

    from domain_models.anomaly.model import Lite0Features

    extractor = Lite0Features()  # verifies the sha256 of the packaged weights
    activations = [m for m in extractor.modules() if isinstance(m, torch.nn.ReLU6)]
    assert activations
    assert not [m for m in extractor.modules() if "swish" in type(m).__name__.lower()]
    with torch.no_grad():
        feats = extractor(torch.zeros(1, 3, 96, 128))
    assert feats.shape == (1, 176, 12, 16)


def test_markdown_table_shape() -> None:
    table = markdown_table(["a", "b"], [[1, 0.5]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 0.5000 |"]


def test_the_report_warns_of_a_defect_kind_the_threshold_lets_through() -> None:
    """A table of good AUROCs can hide a kind caught 0 times in 5: the report names it."""
    from domain_models.anomaly.evaluate import AnomalyReport, TypeFigures, format_report

    per_type = {
        "crack": TypeFigures(count=5, image_auroc=0.96, recall=0.0),
        "hole": TypeFigures(count=4, image_auroc=0.7, recall=0.25),
        "stain": TypeFigures(count=5, image_auroc=1.0, recall=0.6),
    }
    report = AnomalyReport(40, 0.98, None, 1.0, 0.45, 0.62, 0.0, 12.5, 9.0, per_type)
    warnings = [line.strip() for line in format_report(report, "m").splitlines() if "WARNING" in line]
    assert len(warnings) == 2  # stain, caught 3 of 5, is not warned about
    assert warnings[0].startswith(
        "WARNING crack: only 0 of 5 caught at the threshold (recall 0.00); ranked well"
    )
    assert "labelled train/crack/ images" in warnings[0]
    assert warnings[1].startswith(
        "WARNING hole: only 1 of 4 caught at the threshold (recall 0.25) and poorly ranked"
    )
