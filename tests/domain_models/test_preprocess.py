"""Preprocessing (the gateway's, which training uses too) follows the manifest's recipe exactly;
the modules evaluation needs import no torch."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from domain_models.defect.metrics import evaluate_probs
from edge_agent.runtime.preprocess import to_tensor
from protocol.manifest import Preprocessing

LABELS = ("good", "scratch", "hole", "stain", "crack")


def test_preprocess_is_resize_colour_scale_standardise_nchw() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    spec = Preprocessing(
        resize=(16, 12), color="rgb", scale=1 / 255, mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 0.2)
    )
    x = to_tensor([frame], spec)
    assert x.shape == (1, 3, 12, 16)
    assert x.dtype == np.float32
    # The same recipe written out by hand, step by step.
    small = cv2.cvtColor(cv2.resize(frame, (16, 12), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    expected = (
        (small.astype(np.float32) / 255 - np.array([0.1, 0.2, 0.3])) / np.array([0.5, 0.25, 0.2])
    ).transpose(2, 0, 1)
    np.testing.assert_allclose(x[0], expected, atol=1e-5)


def test_gray_and_nhwc_layouts() -> None:
    frame = np.full((30, 40, 3), 200, np.uint8)
    spec = Preprocessing(resize=(20, 10), color="gray", scale=1.0, mean=(100.0,), std=(50.0,), layout="NHWC")
    x = to_tensor([frame, frame], spec)
    assert x.shape == (2, 10, 20, 1)
    np.testing.assert_allclose(x, 2.0)


def test_wrong_frame_shape_is_named() -> None:
    spec = Preprocessing(resize=(16, 12))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        to_tensor([np.zeros((12, 16), np.uint8)], spec)


def test_metrics_count_rejects_with_the_threshold() -> None:
    truth = np.array([0, 0, 0, 0, 1, 2, 3, 4])
    probs = np.full((8, 5), 0.0)
    probs[np.arange(8), truth] = 1.0
    probs[1] = [0.4, 0.6, 0, 0, 0]  # a good part wrongly rejected
    probs[7] = [0.7, 0, 0, 0, 0.3]  # a crack missed
    m = evaluate_probs(probs, truth, LABELS, "good", 0.5)
    assert m.accuracy == pytest.approx(6 / 8)
    assert m.false_reject_rate == pytest.approx(1 / 4)
    assert m.defect_recall == pytest.approx(3 / 4)
    assert m.per_class["crack"].recall == 0.0
    assert m.confusion[1][1] == 1


def test_edge_side_modules_do_not_import_torch() -> None:
    code = (
        "import sys, edge_agent.runtime.preprocess, domain_models.defect.metrics; "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
