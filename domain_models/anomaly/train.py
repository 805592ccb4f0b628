"""Fit a PatchCore head on Lite0 features from good images, export one ONNX graph, calibrate.

Steps: list the MVTec folder -> shuffle train/good with the seed -> hold out a share for the
threshold (plus every image of the optional calibration/good) -> Lite0 features of the rest -> greedy coreset memory bank -> export
``image -> (score, anomaly_map)`` -> threshold from onnxruntime scores of the held-out good images
at the requested false-reject rate -> manifest (+ evaluation on test/ when present).

With labelled defects (``--labelled DIR`` or DIR/train/<type>/, see :mod:`labelled`) a type head
(:mod:`head`) is fit after the threshold on the labelled defects and the held-out good images,
and the graph is exported again with its third output; the score and map are unchanged.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain_models.anomaly.data import MIN_FIT, MIN_HOLDOUT, calibration_images, open_mvtec, read_image
from domain_models.anomaly.evaluate import AnomalyReport, evaluate_onnx, run_images
from domain_models.anomaly.head import TypedAnomalyNet, fit_type_head
from domain_models.anomaly.labelled import LabelledDefects, find_labelled
from domain_models.anomaly.model import MEAN, STD, AnomalyNet, Lite0Features, fit_patchcore
from domain_models.anomaly.release import Calibration, data_listing_sha256, write_release
from domain_models.common import PipelineError, session, threshold_at_false_reject
from domain_models.torch_training import export_onnx
from edge_agent.runtime.preprocess import to_tensor
from protocol.inference import (
    ANOMALY_LABELS,
    MAP_OUTPUT,
    SCORE_OUTPUT,
    TYPE_CONFIDENCE_KEY,
    TYPE_FLAG_KEY,
    TYPE_OUTPUT,
)
from protocol.manifest import Preprocessing

log = logging.getLogger(__name__)


MAX_FOLDS = 20


class TrainConfig(BaseModel):
    """Everything that decides a training run; the same config and data give the same model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: Path = Field(description="MVTec AD folder (train/good, optional test/ and ground_truth/)")
    out: Path = Field(description="Folder for the .onnx, its manifest and release files")
    name: str = Field(default="defect-patchcore", description="Model name in the manifest")
    version: str = Field(default="1.0.0", description="Model version in the manifest")
    seed: int = Field(default=0, description="Shuffles train/good and seeds the coreset")
    width: int = Field(default=256, ge=32, le=1024, description="Model input width in pixels")
    height: int = Field(default=192, ge=32, le=1024, description="Model input height in pixels")
    max_images: int = Field(
        default=200, ge=MIN_FIT + MIN_HOLDOUT, description="Use at most this many good images"
    )
    holdout: float = Field(default=0.2, gt=0, lt=1, description="Share of good images kept for the threshold")
    frr: float = Field(
        default=0.01, ge=0, lt=1, description="Target false-reject rate on held-out good images"
    )
    threshold_folds: int = Field(
        default=0,
        ge=0,
        le=MAX_FOLDS,
        description=(
            "0: the threshold is set on the held-out share. K >= 2: every train/good image is "
            "fitted on and also sets the threshold, scored by a model fit on the other K-1 folds"
        ),
    )
    coreset: int = Field(default=1000, ge=10, description="Memory-bank size (patches kept)")
    sigma: float = Field(default=1.0, gt=0, description="Gaussian smoothing of the map, in map cells")
    threads: int = Field(default=2, ge=1, description="torch and onnxruntime threads")
    labelled: Path | None = Field(
        default=None, description="Folder of labelled defects <type>/*.png (default: DIR/train/<type>/)"
    )
    type_confidence: float = Field(
        default=0.5, gt=0, lt=1, description="Least type probability that names a flagged part's type"
    )
    # Measured on held-out simulator defects: at 0.9 F1 rose (0.898 -> 0.924 with 10 labelled
    # per type, 0.909 with 5) with no more false rejects on good test parts; None turns it off.
    type_flag: float | None = Field(
        default=0.9,
        gt=0,
        lt=1,
        description="Also flag parts below the threshold whose best type reaches this probability",
    )
    max_good_for_head: int = Field(default=200, ge=1, description="Held-out good images the type head sees")
    dataset_id: str | None = Field(
        default=None, description="The cloud dataset DIR was downloaded from (the manifest's lineage)"
    )

    @field_validator("threshold_folds")
    @classmethod
    def _folds(cls, value: int) -> int:
        if value == 1:
            raise ValueError("1 fold scores nothing out of fold: 0 (held-out share) or at least 2")
        return value


def _features(
    extractor: Lite0Features, paths: list[Path], spec: Preprocessing, batch: int = 16
) -> torch.Tensor:
    chunks = []
    with torch.no_grad():
        for start in range(0, len(paths), batch):
            images = [read_image(p) for p in paths[start : start + batch]]
            chunks.append(extractor(torch.from_numpy(np.asarray(to_tensor(images, spec)))))
    return torch.cat(chunks)


def export_anomaly_onnx(net: AnomalyNet | TypedAnomalyNet, path: Path, spec: Preprocessing) -> None:
    """Score and map (plus the type head's output when it has one), dynamic batch, opset 17."""
    width, height = spec.resize
    outputs = [SCORE_OUTPUT, MAP_OUTPUT] + ([TYPE_OUTPUT] if isinstance(net, TypedAnomalyNet) else [])
    export_onnx(net, torch.zeros(1, 3, height, width), path, "image", outputs)


@dataclass(frozen=True)
class TrainOutcome:
    """What a training run wrote and the image counts it used (the draft card's data section)."""

    manifest: Path
    report: AnomalyReport | None
    available: int  # images in train/good
    fitted: int  # images the memory bank was fit on
    held_out: int  # train/good images kept for the threshold
    calibration: int  # calibration/good images (threshold only)
    cross_fitted: int  # train/good images scored out of fold for the threshold (fitted on too)
    folds: int
    labelled: LabelledDefects | None


def train(cfg: TrainConfig) -> tuple[Path, AnomalyReport | None]:
    """Train, export, calibrate; return the manifest path and test figures (see :func:`train_run`)."""
    outcome = train_run(cfg)
    return outcome.manifest, outcome.report


def train_run(cfg: TrainConfig) -> TrainOutcome:
    """Fit, export, calibrate and write the release; returns what was written and the counts used."""
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    folder = open_mvtec(cfg.data, min_train=MIN_FIT + MIN_HOLDOUT, need_test=False)
    labelled = find_labelled(cfg.data, cfg.labelled)  # before the slow part: a bad folder fails fast
    if labelled is not None:
        log.info("type head: %s", labelled.describe())
    order = np.random.default_rng(cfg.seed).permutation(len(folder.train))
    paths = [folder.train[i] for i in order[: cfg.max_images]]
    n_hold = 0 if cfg.threshold_folds else max(MIN_HOLDOUT, round(cfg.holdout * len(paths)))
    fit_paths, hold_paths = paths[n_hold:], paths[:n_hold]
    if len(fit_paths) < MIN_FIT:
        raise PipelineError(
            f"{cfg.data / 'train' / 'good'}: {len(paths)} images leave {len(fit_paths)} to fit after "
            f"{n_hold} held out; at least {MIN_FIT + MIN_HOLDOUT} are needed"
        )
    # Extra good images never fitted on: a 1% false-reject threshold needs hundreds, not dozens.
    extra = calibration_images(cfg.data)
    hold_paths = hold_paths + extra
    spec = Preprocessing(resize=(cfg.width, cfg.height), color="rgb", mean=MEAN, std=STD)
    extractor = Lite0Features()
    feats = _features(extractor, fit_paths, spec)
    head = fit_patchcore(feats, cfg.coreset, cfg.seed)
    net = AnomalyNet(extractor, head, sigma=cfg.sigma).eval()
    log.info("fit on %d good images in %.1f s", len(fit_paths), time.perf_counter() - started)
    cross_scores = _cross_fitted_scores(net, feats, cfg) if cfg.threshold_folds else np.zeros(0)

    cfg.out.mkdir(parents=True, exist_ok=True)
    onnx_path = cfg.out / f"{cfg.name}-{cfg.version}.onnx"
    export_anomaly_onnx(net, onnx_path, spec)
    hold_scores = run_images(session(onnx_path, cfg.threads), hold_paths, spec)[0] if hold_paths else []
    threshold = threshold_at_false_reject(np.concatenate([np.asarray(hold_scores), cross_scores]), cfg.frr)
    calibration = Calibration(
        frr=cfg.frr,
        threshold=threshold,
        holdout=tuple(p.relative_to(cfg.data).as_posix() for p in hold_paths),
        seed=cfg.seed,
        folds=cfg.threshold_folds,
        cross_fitted=len(cross_scores),
    )
    log.info(
        "threshold %.4f from %d good images at FRR %.3f (%d held out, %d cross-fitted over %d folds)",
        threshold,
        calibration.threshold_images,
        cfg.frr,
        len(hold_paths),
        len(cross_scores),
        cfg.threshold_folds,
    )
    # Good images the released model was not fitted on, else (cross-fitted, nothing held out) any.
    good_examples = hold_paths or fit_paths
    labels: tuple[str, ...] = ANOMALY_LABELS
    extra_thresholds: dict[str, float] = {}
    if labelled is not None:
        typed = _attach_head(net, threshold, labelled, good_examples[: cfg.max_good_for_head], spec)
        export_anomaly_onnx(typed, onnx_path, spec)  # same score and map, plus defect_type
        labels, extra_thresholds = ANOMALY_LABELS + labelled.types, {TYPE_CONFIDENCE_KEY: cfg.type_confidence}
        if cfg.type_flag is not None:
            extra_thresholds[TYPE_FLAG_KEY] = cfg.type_flag

    report = None
    golden = good_examples[0]
    full = open_mvtec(cfg.data, min_train=0, need_test=False)
    if any(t.is_defect for t in full.test) and any(not t.is_defect for t in full.test):
        report = evaluate_onnx(onnx_path, spec, threshold, full, threads=1)
        # A clearly defective part makes the better smoke test: it must still be found, and far
        # from the threshold a re-calibrated or quantized variant gives the same label.
        defects = [t.path for t in full.test if t.is_defect]
        defect_scores, _, _ = run_images(session(onnx_path, cfg.threads), defects, spec)
        golden = defects[int(np.argmax(defect_scores))]
    manifest_path = write_release(
        onnx_path,
        name=cfg.name,
        version=cfg.version,
        spec=spec,
        calibration=calibration,
        metrics=report.headline() if report else {},
        golden_image=golden,
        description=(
            f"Few-shot anomaly detection: PatchCore ({cfg.coreset}-patch coreset) on EfficientNet-Lite0 "
            f"features, fit on {len(fit_paths)} good images; threshold at {cfg.frr:.1%} false rejects"
            + (f"; type head on {labelled.describe()}" if labelled is not None else "")
        ),
        data_sha256=_lineage(paths + extra, cfg.data, labelled),
        dataset_id=cfg.dataset_id,
        labels=labels,
        extra_thresholds=extra_thresholds,
        # Checked on each gateway's CPU before the model serves: test parts when there are some.
        golden_set_images=[t.path for t in full.test] or good_examples,
        drift_images=hold_paths,  # never fitted on; the threshold's images, split in two
    )
    log.info("trained %s in %.1f s", manifest_path.name, time.perf_counter() - started)
    return TrainOutcome(
        manifest=manifest_path,
        report=report,
        available=len(folder.train),
        fitted=len(fit_paths),
        held_out=n_hold,
        calibration=len(extra),
        cross_fitted=len(cross_scores),
        folds=cfg.threshold_folds,
        labelled=labelled,
    )


def _cross_fitted_scores(net: AnomalyNet, feats: torch.Tensor, cfg: TrainConfig) -> np.ndarray:
    """Each image's score by a head fit on the other folds' images, so every image both sets the
    threshold and is fitted on. Those heads see fewer images than the released one, which scores
    good parts a little lower still: a threshold on these scores errs towards fewer false rejects."""
    count = min(cfg.threshold_folds, len(feats))
    folds = np.arange(len(feats)) % count  # the images are already shuffled by the seed
    scores = np.zeros(len(feats))
    for fold in range(count):
        inside = torch.from_numpy(folds != fold)
        head = fit_patchcore(feats[inside], cfg.coreset, cfg.seed + 1 + fold)
        fold_net = AnomalyNet(net.features, head, sigma=cfg.sigma).eval()
        with torch.no_grad():
            score, _ = fold_net.score_features(feats[~inside])
        scores[~inside.numpy()] = score.numpy()
        log.info("threshold fold %d/%d scored %d images", fold + 1, count, int((~inside).sum()))
    return scores


def _lineage(paths: list[Path], root: Path, labelled: LabelledDefects | None) -> str:
    """Hash of the good listing, and of the labelled one (relative to its own folder) when used."""
    digest = data_listing_sha256(paths, root)
    if labelled is None:
        return digest
    # --labelled may live outside the data folder: hash its listing relative to itself.
    both = f"{digest} {data_listing_sha256(_labelled_paths(labelled), labelled.source)}"
    return hashlib.sha256(both.encode()).hexdigest()


def _labelled_paths(labelled: LabelledDefects | None) -> list[Path]:
    return [p for t in labelled.types for p in labelled.by_type[t]] if labelled is not None else []


def _attach_head(
    net: AnomalyNet, threshold: float, labelled: LabelledDefects, good: list[Path], spec: Preprocessing
) -> TypedAnomalyNet:
    """Fit the type head on ``good`` (class 0) and the labelled defects (classes 1..K)."""
    paths = good + _labelled_paths(labelled)
    classes = [0] * len(good) + [i + 1 for i, t in enumerate(labelled.types) for _ in labelled.by_type[t]]

    def batches(size: int = 16) -> Iterator[torch.Tensor]:
        for start in range(0, len(paths), size):
            images = [read_image(p) for p in paths[start : start + size]]
            yield torch.from_numpy(np.asarray(to_tensor(images, spec)))

    head = fit_type_head(net, threshold, batches(), torch.tensor(classes), 1 + len(labelled.types))
    return TypedAnomalyNet(net, head).eval()
