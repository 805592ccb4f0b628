"""Choose the head by measurement: PatchCore vs diagonal PaDiM on the same features and split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from domain_models.anomaly.data import MVTecFolder
from domain_models.anomaly.model import MEAN, STD, Lite0Features, fit_padim, fit_patchcore, gaussian_kernel
from domain_models.anomaly.train import _features
from domain_models.common import roc_auc
from protocol.manifest import Preprocessing


def compare_heads(
    folder: MVTecFolder, fit: list[Path], size: tuple[int, int], coreset: int, seed: int
) -> dict[str, float]:
    """Image AUROC on ``folder.test`` of each head fit on ``fit`` (max of the smoothed map)."""
    spec = Preprocessing(resize=size, color="rgb", mean=MEAN, std=STD)
    extractor = Lite0Features()
    train = _features(extractor, fit, spec)
    test = _features(extractor, [t.path for t in folder.test], spec)
    truth = np.array([t.is_defect for t in folder.test])
    blur = gaussian_kernel(1.0)
    results: dict[str, float] = {}
    for name, head in (
        ("PatchCore", fit_patchcore(train, coreset, seed)),
        ("PaDiM (diagonal)", fit_padim(train)),
    ):
        with torch.no_grad():
            dist = head(test)[:, None]
            pad = blur.shape[-1] // 2
            smooth = F.conv2d(F.pad(dist, (pad, pad, pad, pad), mode="replicate"), blur)
        results[name] = roc_auc(truth, smooth.flatten(1).amax(dim=1).numpy())
    return results
