"""Figures of the supervised type head on an MVTec folder's test/ (onnxruntime, no torch).

The labels are the gateway's own: every test image goes through the graph and then through
``edge_agent.runtime.anomaly.anomaly_post_process`` with the model's manifest. test/ holds
labelled defects that were never fitted on (the head fits on train/<type> or --labelled).

- **Type naming** (known types, i.e. the head's): among test defects the threshold flags, the
  share named with their true type; per type precision and recall; a confusion matrix (true
  kind x reported label: a type, 'anomaly' or 'good').
- **Good/defect decision** with and without the head: image AUROC of the anomaly score and of
  the head's defect probability (1 - p_good); F1 and false rejects of the threshold alone and as
  the gateway decides (the head flags too when the manifest sets ``thresholds["type_flag"]``),
  and, to choose that setting, of the head also flagging at a few type probabilities.
- **Unseen kinds** (test types the head was not given): flagged share without and with the head,
  and the share still labelled 'anomaly' (the rest were named as a known type).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from domain_models.anomaly.data import GOOD, MVTecFolder, read_image
from domain_models.common import PipelineError, precision_recall_f1, roc_auc, session
from edge_agent.runtime.anomaly import anomaly_post_process
from edge_agent.runtime.preprocess import to_tensor
from protocol.inference import (
    ANOMALY_LABEL,
    DEFAULT_TYPE_CONFIDENCE,
    DEFECT_KEY,
    GOOD_LABEL,
    SCORE_OUTPUT,
    TYPE_CONFIDENCE_KEY,
    TYPE_OUTPUT,
)
from protocol.manifest import ModelManifest

SWEEP = (0.5, 0.7, 0.9, 0.97)


@dataclass(frozen=True)
class TypeFigures:
    """Precision and recall of naming one type, among flagged test defects."""

    count: int
    precision: float
    recall: float


@dataclass(frozen=True)
class UnseenFigures:
    """A defect kind the head never saw: is it still flagged, and as what."""

    count: int
    flagged_without_head: float
    flagged_with_head: float
    labelled_anomaly: float  # share of the flagged ones reported as 'anomaly'


@dataclass(frozen=True)
class TypeReport:
    """The head's figures on one folder."""

    types: tuple[str, ...]
    confidence: float
    flagged_known: int
    type_accuracy: float  # on flagged test defects of known types
    per_type: dict[str, TypeFigures]
    confusion: dict[str, dict[str, int]]  # true kind -> reported label -> count
    auroc_score: float
    auroc_head: float
    f1_without_head: float
    false_rejects_without_head: float
    f1_with_head: float
    false_rejects_with_head: float
    head_flag_sweep: dict[str, tuple[float, float]]  # type probability -> (F1, false rejects)
    unseen: dict[str, UnseenFigures]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


def _outputs(
    onnx_path: Path, manifest: ModelManifest, paths: list[Path], threads: int
) -> list[list[npt.NDArray[np.float32]]]:
    if manifest.preprocessing is None:
        raise PipelineError(f"model {manifest.name}: no preprocessing")
    sess = session(onnx_path, threads)
    names = [o.name for o in manifest.outputs]
    feed = sess.get_inputs()[0].name
    return [sess.run(names, {feed: to_tensor([read_image(p)], manifest.preprocessing)}) for p in paths]


def evaluate_types(
    onnx_path: Path, manifest: ModelManifest, folder: MVTecFolder, threads: int = 1
) -> TypeReport:
    """The figures of this module's docstring for ``folder``/test."""
    names = [o.name for o in manifest.outputs]
    if TYPE_OUTPUT not in names:
        raise PipelineError(
            f"model {manifest.name} {manifest.version}: no {TYPE_OUTPUT!r} output (no type head)"
        )
    kinds = [t.kind for t in folder.test]
    truth = np.array([k != GOOD for k in kinds])
    if truth.all() or not truth.any():
        raise PipelineError(f"{folder.root / 'test'}: evaluation needs both good and defective test images")
    good = manifest.good_label or GOOD_LABEL
    types = tuple(label for label in manifest.labels if label not in (good, ANOMALY_LABEL))
    confidence = manifest.thresholds.get(TYPE_CONFIDENCE_KEY, DEFAULT_TYPE_CONFIDENCE)
    threshold = manifest.thresholds[DEFECT_KEY]
    raw, p_good, p_top, reported, flagged = [], [], [], [], []
    for out in _outputs(onnx_path, manifest, [t.path for t in folder.test], threads):
        result = anomaly_post_process(out, manifest, 1)[0]
        probs = np.asarray(out[names.index(TYPE_OUTPUT)])[0]
        raw.append(float(np.asarray(out[names.index(SCORE_OUTPUT)]).reshape(-1)[0]))
        p_good.append(float(probs[0]))
        p_top.append(float(probs[1:].max()))
        reported.append(result.label)
        flagged.append(result.is_defect)
    raw_a, flag_a = np.array(raw), np.array(flagged)
    without = raw_a >= threshold
    sweep = {}
    for level in SWEEP:
        rule = without | (np.array(p_top) >= level)
        sweep[f"{level:.2f}"] = (precision_recall_f1(truth, rule).f1, float(rule[~truth].mean()))
    known = np.array([k in types for k in kinds])
    sel = flag_a & truth & known
    correct = [reported[i] == kinds[i] for i in np.flatnonzero(sel)]
    per_type = {}
    for t in types:
        named = sum(1 for i in np.flatnonzero(flag_a) if reported[i] == t)
        hits = sum(1 for i in np.flatnonzero(sel) if kinds[i] == t and reported[i] == t)
        n = int(sum(1 for i in np.flatnonzero(sel) if kinds[i] == t))
        per_type[t] = TypeFigures(n, hits / named if named else 0.0, hits / n if n else 0.0)
    confusion: dict[str, dict[str, int]] = {}
    for kind, label in zip(kinds, reported, strict=True):
        row = confusion.setdefault(kind, {})
        row[label] = row.get(label, 0) + 1
    unseen = {}
    for kind in sorted({k for k in kinds if k != GOOD and k not in types}):
        is_kind = np.array([k == kind for k in kinds])
        n_flag = int(flag_a[is_kind].sum())
        as_anomaly = sum(1 for i in np.flatnonzero(is_kind & flag_a) if reported[i] == ANOMALY_LABEL)
        unseen[kind] = UnseenFigures(
            count=int(is_kind.sum()),
            flagged_without_head=float(without[is_kind].mean()),
            flagged_with_head=float(flag_a[is_kind].mean()),
            labelled_anomaly=as_anomaly / n_flag if n_flag else 0.0,
        )
    return TypeReport(
        types=types,
        confidence=confidence,
        flagged_known=int(sel.sum()),
        type_accuracy=float(np.mean(correct)) if correct else 0.0,
        per_type=per_type,
        confusion=confusion,
        auroc_score=roc_auc(truth, raw_a),
        auroc_head=roc_auc(truth, 1.0 - np.array(p_good)),
        f1_without_head=precision_recall_f1(truth, without).f1,
        false_rejects_without_head=float(without[~truth].mean()),
        f1_with_head=precision_recall_f1(truth, flag_a).f1,
        false_rejects_with_head=float(flag_a[~truth].mean()),
        head_flag_sweep=sweep,
        unseen=unseen,
    )


def format_types(report: TypeReport) -> str:
    """A console summary of a type report."""
    lines = [
        f"type head: {len(report.types)} type(s) {list(report.types)}, confidence {report.confidence:.2f}",
        f"  type accuracy on {report.flagged_known} flagged test defects of known types: {report.type_accuracy:.4f}"
        f" (chance {1 / max(len(report.types), 1):.4f})",
        f"  image AUROC: anomaly score {report.auroc_score:.4f}, head's defect probability {report.auroc_head:.4f}",
        f"  threshold alone: F1 {report.f1_without_head:.4f}, false rejects {report.false_rejects_without_head:.4f};"
        f"  as the gateway decides: F1 {report.f1_with_head:.4f}, false rejects {report.false_rejects_with_head:.4f}",
        "  if the head also flagged at type probability >= p: "
        + ", ".join(f"p {k}: F1 {f1:.4f} FR {fr:.4f}" for k, (f1, fr) in report.head_flag_sweep.items()),
    ]
    lines += [
        f"  {t:<12} n={f.count:<4} type precision {f.precision:.4f}  type recall {f.recall:.4f}"
        for t, f in report.per_type.items()
    ]
    labels = sorted({label for row in report.confusion.values() for label in row})
    lines.append("  confusion (true kind -> reported label): " + ", ".join(labels))
    for kind, row in sorted(report.confusion.items()):
        lines.append(f"    {kind:<12} " + " ".join(f"{row.get(label, 0):>5}" for label in labels))
    for kind, u in report.unseen.items():
        lines.append(
            f"  unseen {kind:<12} n={u.count:<4} flagged {u.flagged_with_head:.4f} with head, "
            f"{u.flagged_without_head:.4f} without; {u.labelled_anomaly:.4f} of flagged labelled '{ANOMALY_LABEL}'"
        )
    return "\n".join(lines) + "\n"
