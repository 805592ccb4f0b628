"""Post-processing plug-ins keyed by ``manifest.task``: raw outputs -> wire task outputs."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from edge_agent.runtime.anomaly import defect_dispatch
from protocol.inference import DEFAULT_DEFECT_THRESHOLD, DEFECT_KEY
from protocol.manifest import ModelManifest
from protocol.messages import ClassificationOutput, DefectOutput, NotesOutput, ParcelOutput

Output = DefectOutput | ClassificationOutput | ParcelOutput | NotesOutput
Array = npt.NDArray[np.float32]
PostProcess = Callable[[Sequence[Array], ModelManifest, int], list[Output]]


def _probabilities(outputs: Sequence[Array], manifest: ModelManifest, batch: int) -> Array:
    probs = np.asarray(outputs[0], dtype=np.float32)
    expected = (batch, len(manifest.labels))
    if probs.shape != expected:
        raise ValueError(
            f"model {manifest.name} {manifest.version}: output {manifest.outputs[0].name} has shape "
            f"{probs.shape}, expected {expected} (batch, labels)"
        )
    # Float rounding can put a softmax a hair outside [0, 1]; the wire schema is strict about it.
    clipped: Array = np.clip(probs, 0.0, 1.0)
    return clipped


def _scores(row: Array, labels: Sequence[str]) -> dict[str, float]:
    return {label: round(float(p), 6) for label, p in zip(labels, row, strict=True)}


def defect_post_process(outputs: Sequence[Array], manifest: ModelManifest, batch: int) -> list[Output]:
    """Softmax over labels -> DefectOutput.

    The top label is a defect only when it is not ``good_label`` and its probability reaches its
    threshold (``thresholds[label]``, else ``thresholds["defect"]``, else 0.5). A top defect label
    under its threshold is reported as ``good_label`` with the good label's probability as score,
    so ``label`` and ``is_defect`` never disagree.
    """
    probs = _probabilities(outputs, manifest, batch)
    good = manifest.good_label
    if good is None:
        raise ValueError(f"model {manifest.name}: a defect model needs a good_label")
    good_index = manifest.labels.index(good)
    results: list[Output] = []
    for row in probs:
        top = int(np.argmax(row))
        label = manifest.labels[top]
        threshold = manifest.thresholds.get(
            label, manifest.thresholds.get(DEFECT_KEY, DEFAULT_DEFECT_THRESHOLD)
        )
        is_defect = label != good and float(row[top]) >= threshold
        # The cut-off only means something when a defect label was on top and judged against it.
        judged = threshold if label != good and math.isfinite(threshold) else None
        if not is_defect:
            label, top = good, good_index
        results.append(
            DefectOutput(
                label=label,
                is_defect=is_defect,
                score=float(row[top]),
                scores=_scores(row, manifest.labels),
                threshold=judged,
            )
        )
    return results


def classification_post_process(
    outputs: Sequence[Array], manifest: ModelManifest, batch: int
) -> list[Output]:
    """Probabilities over labels -> ClassificationOutput with the arg-max label."""
    probs = _probabilities(outputs, manifest, batch)
    results: list[Output] = []
    for row in probs:
        top = int(np.argmax(row))
        results.append(
            ClassificationOutput(
                label=manifest.labels[top], score=float(row[top]), scores=_scores(row, manifest.labels)
            )
        )
    return results


# Explicit registry: a new task is one function and one line here.
TASKS: dict[str, PostProcess] = {
    "defect": defect_dispatch(defect_post_process),  # anomaly graphs (score + anomaly_map) too
    "classification": classification_post_process,
}
