"""Score an exported anomaly model on an MVTec folder with onnxruntime (no torch).

Preprocessing is the edge runtime's own (``edge_agent.runtime.preprocess``), so the figures are
the ones a gateway gets.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from domain_models.anomaly.data import GOOD, MVTecFolder, read_image, read_mask
from domain_models.common import (
    PipelineError,
    check_manifest_matches_onnx,
    precision_recall_f1,
    roc_auc,
    session,
)
from edge_agent.runtime.preprocess import to_tensor
from protocol.inference import MAP_OUTPUT, SCORE_OUTPUT, TYPE_OUTPUT
from protocol.manifest import ManifestError, ModelManifest, Preprocessing, artifact_path, load_manifest

Scores = npt.NDArray[np.float32]


@dataclass(frozen=True)
class TypeFigures:
    """One defect type against all good test images."""

    count: int
    image_auroc: float
    recall: float


@dataclass(frozen=True)
class AnomalyReport:
    """Held-out figures of one model on one folder."""

    images: int
    image_auroc: float
    pixel_auroc: float | None
    precision: float
    recall: float
    f1: float
    false_reject_rate: float
    threshold: float
    p50_ms: float
    per_type: dict[str, TypeFigures] = field(default_factory=dict)

    def headline(self) -> dict[str, float]:
        """The figures that go into a manifest's ``metrics``."""
        out = {
            "image_auroc": round(self.image_auroc, 4),
            "f1": round(self.f1, 4),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "false_reject_rate": round(self.false_reject_rate, 4),
        }
        if self.pixel_auroc is not None:
            out["pixel_auroc"] = round(self.pixel_auroc, 4)
        return out

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


def open_model(manifest_path: Path) -> tuple[ModelManifest, Path]:
    """Load a manifest, verify its artifact, and check its I/O against the ONNX graph."""
    try:
        manifest = load_manifest(manifest_path)
    except ManifestError as exc:
        raise PipelineError(str(exc)) from None
    names = {o.name for o in manifest.outputs}
    if manifest.preprocessing is None or names not in (
        {SCORE_OUTPUT, MAP_OUTPUT},
        {SCORE_OUTPUT, MAP_OUTPUT, TYPE_OUTPUT},
    ):
        raise PipelineError(
            f"{manifest_path}: not an anomaly model (needs image preprocessing and outputs "
            f"{SCORE_OUTPUT!r}, {MAP_OUTPUT!r} [, {TYPE_OUTPUT!r}]; has {[o.name for o in manifest.outputs]})"
        )
    check_manifest_matches_onnx(manifest_path, manifest)
    return manifest, artifact_path(manifest_path, manifest)


def run_images(
    sess: ort.InferenceSession, paths: Sequence[Path], spec: Preprocessing, batch: int = 8
) -> tuple[Scores, Scores, list[float]]:
    """Raw scores ``(N,)``, maps ``(N, h, w)`` and per-image latency (ms, batch of one)."""
    input_name = sess.get_inputs()[0].name
    scores, maps, times = [], [], []
    for start in range(0, len(paths), batch):
        images = [read_image(p) for p in paths[start : start + batch]]
        for image in images:
            tensor = to_tensor([image], spec)
            began = time.perf_counter()
            score, amap = sess.run([SCORE_OUTPUT, MAP_OUTPUT], {input_name: tensor})
            times.append((time.perf_counter() - began) * 1000.0)
            scores.append(score)
            maps.append(amap)
    if not scores:
        raise PipelineError("no images to score")
    return np.concatenate(scores).astype(np.float32), np.concatenate(maps).astype(np.float32), times


def _pixel_auroc(folder: MVTecFolder, maps: Scores, spec: Preprocessing) -> float | None:
    if not folder.has_masks:
        return None
    width, height = spec.resize
    # Scored at the model's input resolution: finer grids only repeat interpolated values.
    truth, values = [], []
    for item, amap in zip(folder.test, maps, strict=True):
        up = cv2.resize(amap, (width, height), interpolation=cv2.INTER_LINEAR)
        mask = read_mask(item.mask, (height, width)) if item.mask else np.zeros((height, width), bool)
        truth.append(mask.ravel())
        values.append(up.ravel())
    return roc_auc(np.concatenate(truth), np.concatenate(values))


def evaluate_onnx(
    onnx_path: Path, spec: Preprocessing, threshold: float, folder: MVTecFolder, threads: int = 1
) -> AnomalyReport:
    """Image/pixel AUROC, P/R/F1 and false rejects at ``threshold``, per type, p50 latency."""
    if not folder.test:
        raise PipelineError(f"{folder.root}: no test images to evaluate on")
    kinds = [t.kind for t in folder.test]
    truth = np.array([k != GOOD for k in kinds])
    if truth.all() or not truth.any():
        raise PipelineError(f"{folder.root / 'test'}: evaluation needs both good and defective test images")
    raw, maps, times = run_images(session(onnx_path, threads), [t.path for t in folder.test], spec)
    rejected = raw >= threshold
    prf = precision_recall_f1(truth, rejected)
    per_type: dict[str, TypeFigures] = {}
    for kind in folder.defect_types:
        sel = np.array([k in (kind, GOOD) for k in kinds])
        is_kind = np.array([k == kind for k in kinds])
        per_type[kind] = TypeFigures(
            count=int(is_kind.sum()),
            image_auroc=roc_auc(truth[sel], raw[sel]),
            recall=float(rejected[is_kind].mean()),
        )
    return AnomalyReport(
        images=len(kinds),
        image_auroc=roc_auc(truth, raw),
        pixel_auroc=_pixel_auroc(folder, maps, spec),
        precision=prf.precision,
        recall=prf.recall,
        f1=prf.f1,
        false_reject_rate=float(rejected[~truth].mean()),
        threshold=threshold,
        p50_ms=statistics.median(times),
        per_type=per_type,
    )


# Below this share of a defect kind caught at the threshold, the report warns.
MISSED_RECALL = 0.5


def missed_kinds(report: AnomalyReport) -> list[str]:
    """One sentence per defect kind the threshold mostly lets through, with what moves it.

    A kind caught 0 times in 5 is easy to miss in a table of good AUROCs, and a line would ship
    a model blind to it; the report and the card both say so.
    """
    out = []
    for kind, f in report.per_type.items():
        if not f.count or f.recall >= MISSED_RECALL:
            continue
        caught = round(f.recall * f.count)
        head = f"{kind}: only {caught} of {f.count} caught at the threshold (recall {f.recall:.2f})"
        if f.image_auroc >= 0.9:
            out.append(
                f"{head}; ranked well (AUROC {f.image_auroc:.2f}) it is the threshold that lets them "
                f"through: a higher --frr trades false rejects for catches, labelled train/{kind}/ "
                "images add a type head"
            )
        else:
            out.append(
                f"{head} and poorly ranked (AUROC {f.image_auroc:.2f}): the model barely sees this kind; "
                f"labelled train/{kind}/ images add a type head that flags it"
            )
    return out


def format_report(report: AnomalyReport, title: str) -> str:
    """A console summary of a report."""
    pixel = "n/a (no masks)" if report.pixel_auroc is None else f"{report.pixel_auroc:.4f}"
    lines = [
        f"{title}: {report.images} test images, threshold {report.threshold:.4f}",
        f"  image AUROC {report.image_auroc:.4f}   pixel AUROC {pixel}",
        f"  at threshold: precision {report.precision:.4f}  recall {report.recall:.4f}  F1 {report.f1:.4f}"
        f"  false rejects {report.false_reject_rate:.4f}",
        f"  latency p50 {report.p50_ms:.2f} ms (batch 1)",
    ]
    lines += [
        f"  {kind:<12} n={f.count:<4} image AUROC {f.image_auroc:.4f}  recall {f.recall:.4f}"
        for kind, f in report.per_type.items()
    ]
    lines += [f"  WARNING {w}" for w in missed_kinds(report)]
    return "\n".join(lines) + "\n"
