"""FP32 anomaly model -> static QDQ per-channel INT8, kept only if the gate passes (no torch).

Only the feature extractor (nodes named ``/features/...``) is quantized; the scoring head and
the map smoothing stay FP32: ``|f|^2 - 2 f.m + |m|^2`` cancels catastrophically in 8 bits
(measured on the bundled model: image AUROC 0.977 FP32, 0.805 with the head's Add/Mul/Conv in
INT8, 0.972 with the head in FP32). The memory bank is then re-fit on the INT8 graph's own
features (``bank.py``: 0.974), and the INT8 threshold recalibrated on the same held-out good
images at the same false-reject rate.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from domain_models.anomaly.bank import refit_bank
from domain_models.anomaly.data import open_mvtec, read_image
from domain_models.anomaly.evaluate import AnomalyReport, evaluate_onnx, open_model, run_images
from domain_models.anomaly.release import Calibration, write_release
from domain_models.common import (
    GateResult,
    PipelineError,
    gate,
    latency_rows,
    quantize_static_qdq,
    session,
    threshold_at_false_reject,
)
from edge_agent.runtime.preprocess import to_tensor

log = logging.getLogger(__name__)

QUANTIZED_SCOPE = ("/features/",)


@dataclass(frozen=True)
class QuantizeResult:
    """Both evaluations, the gate verdicts, and the INT8 manifest if it was written."""

    fp32: AnomalyReport
    int8: AnomalyReport
    gates: tuple[GateResult, ...]
    manifest: Path | None
    latency: tuple[tuple[str, ...], ...] = ()  # latency_rows of FP32 and INT8, refused or not

    @property
    def passed(self) -> bool:
        """True when every gated metric is within tolerance."""
        return all(g.passed for g in self.gates)


def quantize_model(
    manifest_path: Path,
    data: Path,
    tolerance: float = 1.0,
    out: Path | None = None,
    calib_images: int = 64,
    latency_threads: Sequence[int] = (),
) -> QuantizeResult:
    """Quantize, evaluate FP32 and INT8 on ``data``/test, and write the INT8 release only if it passes."""
    manifest, fp32_path = open_model(manifest_path)
    spec = manifest.preprocessing
    if spec is None:  # open_model guarantees it; this keeps the type checker informed
        raise PipelineError(f"{manifest_path}: no preprocessing")
    calib_file = manifest_path.parent / f"{fp32_path.name.removesuffix('.onnx')}.calibration.json"
    if not calib_file.is_file():
        raise PipelineError(f"{manifest_path}: calibration record {calib_file.name} not found beside it")
    calibration = Calibration.read(calib_file)
    folder = open_mvtec(data, min_train=1)
    held = set(calibration.holdout)
    fit_images = [p for p in folder.train if p.relative_to(data).as_posix() not in held][:calib_images]
    hold_paths = [data / rel for rel in calibration.holdout]
    missing = [p for p in hold_paths if not p.is_file()]
    if missing:
        raise PipelineError(
            f"{data}: held-out calibration image {missing[0]} is missing; use the training folder"
        )
    if not fit_images:
        raise PipelineError(f"{data / 'train' / 'good'}: no images left for INT8 calibration")
    feeds = [{manifest.inputs[0].name: to_tensor([read_image(p)], spec)} for p in fit_images]

    out_dir = out or manifest_path.parent
    stem = f"{manifest.name}-int8-{manifest.version}"
    with tempfile.TemporaryDirectory() as tmp:
        int8_tmp = Path(tmp) / f"{stem}.onnx"
        quantize_static_qdq(fp32_path, int8_tmp, feeds, per_channel=True, only_prefixes=QUANTIZED_SCOPE)
        fit_all = [p for p in folder.train if p.relative_to(data).as_posix() not in held]
        refit_bank(int8_tmp, fit_all, spec, calibration.seed)
        hold_scores, _, _ = run_images(session(int8_tmp), hold_paths, spec)
        int8_threshold = threshold_at_false_reject(hold_scores, calibration.frr)
        fp32_report = evaluate_onnx(fp32_path, spec, manifest.thresholds["defect"], folder)
        int8_report = evaluate_onnx(int8_tmp, spec, int8_threshold, folder)
        gates = (
            gate("image AUROC", fp32_report.image_auroc, int8_report.image_auroc, tolerance),
            gate("F1", fp32_report.f1, int8_report.f1, tolerance),
        )
        for g in gates:
            log.info("gate %s", g.describe())
        latency: tuple[tuple[str, ...], ...] = ()
        if latency_threads:
            models = {"FP32": fp32_path, "INT8": int8_tmp}
            rows = latency_rows(models, feeds[0], threads=latency_threads, runs=40)
            latency = tuple(tuple(r) for r in rows)
        if not all(g.passed for g in gates):
            return QuantizeResult(fp32_report, int8_report, gates, None, latency)
        out_dir.mkdir(parents=True, exist_ok=True)
        int8_path = out_dir / int8_tmp.name
        shutil.copyfile(int8_tmp, int8_path)
    golden = manifest.golden
    golden_path = manifest_path.parent / golden.input if golden else hold_paths[0]
    int8_manifest = write_release(
        int8_path,
        name=f"{manifest.name}-int8",
        version=manifest.version,
        spec=spec,
        calibration=Calibration(calibration.frr, int8_threshold, calibration.holdout, calibration.seed),
        metrics=int8_report.headline(),
        golden_image=golden_path,
        description=f"{manifest.description} (INT8 static QDQ per-channel; scoring head in FP32)",
        data_sha256=manifest.lineage.data_sha256 if manifest.lineage else None,
        parent_version=manifest.version,
    )
    return QuantizeResult(fp32_report, int8_report, gates, int8_manifest, latency)
