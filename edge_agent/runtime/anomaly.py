"""Post-processing of an anomaly-detection graph (``score`` [N], ``anomaly_map`` [N, h, w]).

Such a graph (``domain_models.anomaly``) is a ``task: defect`` model fit on good parts only; its
outputs, labels and wire score are defined in ``protocol.inference``. The optional type head only
names a part the threshold already flagged; with ``thresholds["type_flag"]`` it may also flag a
part below the threshold, but it never clears a flag, so a defect kind nobody labelled is flagged
at least as often as without it.

The box is the bounding box of the hottest connected region of the map, in the model's input
pixels (``preprocessing.resize``); :func:`box_to_source` scales it to the source frame.

This module must not import ``tasks`` (``tasks`` imports it to register the dispatch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from protocol.inference import (
    ANOMALY_LABEL,
    DEFAULT_TYPE_CONFIDENCE,
    DEFECT_KEY,
    MAP_OUTPUT,
    SCORE_OUTPUT,
    TYPE_CONFIDENCE_KEY,
    TYPE_FLAG_KEY,
    TYPE_OUTPUT,
    normalized_score,
)
from protocol.manifest import ModelManifest
from protocol.messages import Box, DefectOutput

# The box covers the peak's connected region above median + this share of (peak - median), or
# above the threshold if higher. Relative to the median, not zero: a patch distance never is
# zero, so "half the peak" would cover the whole part.
REGION_LEVEL = 0.5

Array = npt.NDArray[np.float32]


def is_anomaly_graph(manifest: ModelManifest) -> bool:
    """True when the model's outputs are an anomaly graph's (a score and an anomaly map)."""
    names = {o.name for o in manifest.outputs}
    return {SCORE_OUTPUT, MAP_OUTPUT} <= names


def hottest_box(amap: Array, level: float, input_size: tuple[int, int]) -> Box:
    """Box (input pixels) of the connected region of ``amap >= level`` that holds the peak.

    ``input_size`` is the model input's (width, height); the map covers it evenly.
    """
    h, w = amap.shape
    peak_y, peak_x = np.unravel_index(int(np.argmax(amap)), amap.shape)
    hot = (amap >= min(level, float(amap[peak_y, peak_x]))).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(hot, connectivity=8)
    x, y, bw, bh = (int(v) for v in stats[int(labels[peak_y, peak_x]), :4])
    sx, sy = input_size[0] / w, input_size[1] / h
    x0, y0 = int(np.floor(x * sx)), int(np.floor(y * sy))
    x1, y1 = int(np.ceil((x + bw) * sx)), int(np.ceil((y + bh) * sy))
    return Box(x=x0, y=y0, w=max(x1 - x0, 1), h=max(y1 - y0, 1))


def box_to_source(box: Box, input_size: tuple[int, int], source_shape: Sequence[int]) -> Box:
    """Scale a box from model-input pixels (width, height) to a source frame of shape (H, W, ...)."""
    sx, sy = source_shape[1] / input_size[0], source_shape[0] / input_size[1]
    x0, y0 = int(np.floor(box.x * sx)), int(np.floor(box.y * sy))
    x1 = min(int(np.ceil((box.x + box.w) * sx)), int(source_shape[1]))
    y1 = min(int(np.ceil((box.y + box.h) * sy)), int(source_shape[0]))
    return Box(x=x0, y=y0, w=max(x1 - x0, 1), h=max(y1 - y0, 1))


def _type_probs(
    outputs: Sequence[Array], manifest: ModelManifest, batch: int, bad: str
) -> tuple[Array | None, tuple[str, ...]]:
    """The ``defect_type`` output (batch, 1 + K) and its K type names, or (None, ()) without a head."""
    names = [o.name for o in manifest.outputs]
    if TYPE_OUTPUT not in names:
        return None, ()
    types = tuple(label for label in manifest.labels if label not in (manifest.good_label, bad))
    probs = np.asarray(outputs[names.index(TYPE_OUTPUT)], dtype=np.float32)
    if not types or probs.shape != (batch, 1 + len(types)):
        raise ValueError(
            f"model {manifest.name} {manifest.version}: {TYPE_OUTPUT} has shape {probs.shape}, expected "
            f"({batch}, {1 + len(types)}) for the good label and types {list(types)}"
        )
    return probs, types


def anomaly_post_process(outputs: Sequence[Array], manifest: ModelManifest, batch: int) -> list[DefectOutput]:
    """(score, anomaly_map[, defect_type]) -> DefectOutput: good, a named type or 'anomaly'; a box when defective."""
    names = [o.name for o in manifest.outputs]
    where = f"model {manifest.name} {manifest.version}"
    try:
        raw = np.asarray(outputs[names.index(SCORE_OUTPUT)], dtype=np.float32).reshape(-1)
        maps = np.asarray(outputs[names.index(MAP_OUTPUT)], dtype=np.float32)
    except ValueError:
        raise ValueError(f"{where}: outputs {names} lack {SCORE_OUTPUT!r} and {MAP_OUTPUT!r}") from None
    if raw.shape != (batch,) or maps.ndim != 3 or maps.shape[0] != batch:
        raise ValueError(
            f"{where}: got score {raw.shape} and anomaly_map {maps.shape}, expected ({batch},) and ({batch}, h, w)"
        )
    good = manifest.good_label
    threshold = manifest.thresholds.get(DEFECT_KEY)
    if good is None or threshold is None or threshold <= 0:
        raise ValueError(
            f"{where}: an anomaly model needs good_label and a positive thresholds[{DEFECT_KEY!r}]"
        )
    bad = next((label for label in manifest.labels if label != good), ANOMALY_LABEL)
    if manifest.preprocessing is None:
        raise ValueError(f"{where}: an anomaly model needs image preprocessing")
    input_size = manifest.preprocessing.resize
    type_probs, types = _type_probs(outputs, manifest, batch, bad)
    confidence = manifest.thresholds.get(TYPE_CONFIDENCE_KEY, DEFAULT_TYPE_CONFIDENCE)
    type_flag = manifest.thresholds.get(TYPE_FLAG_KEY)
    results: list[DefectOutput] = []
    for i, (value, amap) in enumerate(zip(raw, maps, strict=True)):
        score = normalized_score(float(value), threshold)
        is_defect = float(value) >= threshold
        scores = {bad: round(score, 6), good: round(1.0 - score, 6)}
        label = bad if is_defect else good
        confident = score if is_defect else 1.0 - score
        if type_probs is not None:
            row = np.clip(type_probs[i, 1:], 0.0, 1.0)  # a softmax can stray a hair outside
            scores.update({t: round(float(p), 6) for t, p in zip(types, row, strict=True)})
            top = int(np.argmax(row))
            if not is_defect and type_flag is not None and float(row[top]) >= type_flag:
                is_defect, confident = True, float(row[top])
            if is_defect and float(row[top]) >= confidence:
                label = types[top]
        box = None
        if is_defect:
            base = float(np.median(amap))
            level = base + REGION_LEVEL * (float(amap.max()) - base)
            # Above the threshold when the map reaches it; a part the head flagged may stay below.
            box = hottest_box(amap, max(threshold, level) if float(value) >= threshold else level, input_size)
        results.append(
            DefectOutput(
                label=label,
                is_defect=is_defect,
                score=round(confident, 6),
                scores=scores,
                box=box,
                # What the score means: raw / threshold is the part's distance in thresholds.
                raw_score=round(max(float(value), 0.0), 6),
                threshold=threshold,
            )
        )
    return results


def defect_dispatch(
    supervised: Callable[[Sequence[Array], ModelManifest, int], list[Any]],
) -> Callable[[Sequence[Array], ModelManifest, int], list[Any]]:
    """The ``defect`` task's post-process: anomaly graphs here, classifier graphs to ``supervised``."""

    def post_process(outputs: Sequence[Array], manifest: ModelManifest, batch: int) -> list[Any]:
        if is_anomaly_graph(manifest):
            return anomaly_post_process(outputs, manifest, batch)
        return supervised(outputs, manifest, batch)

    post_process.__doc__ = f"Anomaly graphs -> anomaly_post_process; others -> {supervised.__name__}."
    return post_process
