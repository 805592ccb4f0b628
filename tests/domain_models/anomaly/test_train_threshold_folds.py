"""A cross-fitted threshold (``--threshold-folds K``): every train/good image is fitted on and also
sets the threshold, scored by a model fit on the other folds; the record, the card and the
commands that read held-out images say so."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from domain_models.anomaly.model import AnomalyNet, Lite0Features, fit_patchcore
from domain_models.anomaly.quantize import quantize_model
from domain_models.anomaly.release import Calibration
from domain_models.anomaly.train import TrainConfig, _cross_fitted_scores, train_run
from domain_models.common import PipelineError
from simulators.camera_line import CameraLineConfig
from simulators.mvtec import write_mvtec

LINE = CameraLineConfig(seed=41, width=320, height=240)
TRAIN_GOOD = 24


@pytest.fixture(scope="module")
def cross_fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    data = tmp_path_factory.mktemp("mvtec") / "sim"
    write_mvtec(data, LINE, TRAIN_GOOD, 0, 0)
    out = tmp_path_factory.mktemp("model")
    cfg = TrainConfig(
        data=data, out=out, seed=5, width=128, height=96, coreset=100, threads=2, threshold_folds=4
    )
    return train_run(cfg).manifest, data


def test_one_fold_is_refused_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"0 \(held-out share\) or at least 2"):
        TrainConfig(data=tmp_path, out=tmp_path, threshold_folds=1)


def test_each_image_is_scored_by_a_head_that_never_saw_it() -> None:
    # A memory bank holding every patch it was fit on scores its own images 0 (each patch is its
    # own nearest neighbour): an out-of-fold score above 0 is one from a head without the image.
    torch.manual_seed(0)
    feats = torch.randn(10, 8, 4, 4)
    bank_of_all = 10 * 4 * 4
    net = AnomalyNet(Lite0Features(), fit_patchcore(feats, bank_of_all, 0)).eval()
    with torch.no_grad():
        in_sample, _ = net.score_features(feats)
    cfg = TrainConfig(data=Path("."), out=Path("."), coreset=bank_of_all, threshold_folds=5)
    out_of_fold = _cross_fitted_scores(net, feats, cfg)
    assert float(in_sample.max()) < 0.01, in_sample  # 0 but for the rounding of |a|^2 - 2ab + |b|^2
    assert out_of_fold.shape == (10,)
    assert (out_of_fold > 0.5).all(), out_of_fold


@pytest.mark.slow
def test_the_record_counts_every_train_image_and_holds_none_out(cross_fitted: tuple[Path, Path]) -> None:
    manifest, _data = cross_fitted
    record = Calibration.read(manifest.parent / manifest.name.replace(".manifest.json", ".calibration.json"))
    assert (record.folds, record.cross_fitted, record.holdout) == (4, TRAIN_GOOD, ())
    assert record.threshold_images == TRAIN_GOOD


@pytest.mark.slow
def test_quantizing_a_cross_fitted_model_asks_for_held_out_images(cross_fitted: tuple[Path, Path]) -> None:
    manifest, data = cross_fitted
    with pytest.raises(PipelineError, match=r"no good image was held out .*calibration/good"):
        quantize_model(manifest, data)
