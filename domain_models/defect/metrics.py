"""Release metrics for a defect classifier, from class probabilities (numpy only).

A part is *rejected* when ``1 - p(good)`` reaches the manifest's ``defect`` threshold; defect
recall and the false-reject rate use that decision, accuracy and F1 use the arg-max class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class ClassFigures:
    """Precision, recall and F1 of one class, with how many true examples it had."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class DefectMetrics:
    """Held-out figures for one evaluation set."""

    count: int
    accuracy: float
    defect_recall: float
    false_reject_rate: float
    macro_f1: float
    per_class: dict[str, ClassFigures]
    confusion: list[list[int]]  # rows: true label, columns: predicted label, in label order

    def headline(self) -> dict[str, float]:
        """The four numbers that go into the manifest's ``metrics``."""
        return {
            "accuracy": round(self.accuracy, 4),
            "defect_recall": round(self.defect_recall, 4),
            "false_reject_rate": round(self.false_reject_rate, 4),
            "macro_f1": round(self.macro_f1, 4),
        }


def evaluate_probs(
    probs: npt.NDArray[np.floating],
    truth: npt.NDArray[np.integer],
    labels: tuple[str, ...],
    good_label: str,
    defect_threshold: float,
) -> DefectMetrics:
    """Score probabilities ``(N, len(labels))`` against true label indices ``(N,)``."""
    if probs.ndim != 2 or probs.shape[1] != len(labels) or probs.shape[0] != truth.shape[0]:
        raise ValueError(
            f"evaluate_probs: probs {probs.shape} do not fit {truth.shape[0]} items x {len(labels)} labels"
        )
    good = labels.index(good_label)
    pred = probs.argmax(axis=1)
    rejected = (1.0 - probs[:, good]) >= defect_threshold
    is_good = truth == good
    n = len(labels)
    confusion = np.zeros((n, n), np.int64)
    np.add.at(confusion, (truth, pred), 1)
    per_class: dict[str, ClassFigures] = {}
    for i, name in enumerate(labels):
        tp = int(confusion[i, i])
        predicted, actual = int(confusion[:, i].sum()), int(confusion[i].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = ClassFigures(precision=precision, recall=recall, f1=f1, support=actual)
    present = [f.f1 for f in per_class.values() if f.support]
    return DefectMetrics(
        count=int(truth.shape[0]),
        accuracy=float((pred == truth).mean()),
        defect_recall=float(rejected[~is_good].mean()) if (~is_good).any() else 0.0,
        false_reject_rate=float(rejected[is_good].mean()) if is_good.any() else 0.0,
        macro_f1=float(np.mean(present)) if present else 0.0,
        per_class=per_class,
        confusion=confusion.tolist(),
    )
