"""Post-processing of an anomaly-detection graph (``score`` [N], ``anomaly_map`` [N, h, w]).

Such a graph (``domain_models.anomaly``) is a ``task: defect`` model fit on good parts only. Its
raw score is a feature distance; ``thresholds["defect"]`` was calibrated on held-out good parts.
The wire score is ``raw / (raw + threshold)``: in [0, 1), monotonic, exactly 0.5 at the threshold.

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

from protocol.manifest import ModelManifest
from protocol.messages import Box, DefectOutput

SCORE_OUTPUT = "score"
MAP_OUTPUT = "anomaly_map"
ANOMALY_LABEL = "anomaly"
# The box covers the peak's connected region above median + this share of (peak - median), or
# above the threshold if higher. Relative to the median, not zero: a patch distance never is
# zero, so "half the peak" would cover the whole part.
REGION_LEVEL = 0.5

Array = npt.NDArray[np.float32]


def is_anomaly_graph(manifest: ModelManifest) -> bool:
    """True when the model's outputs are an anomaly graph's (a score and an anomaly map)."""
    names = {o.name for o in manifest.outputs}
    return {SCORE_OUTPUT, MAP_OUTPUT} <= names


def normalized_score(raw: float, threshold: float) -> float:
    """Raw distance -> [0, 1): 0.5 exactly at the calibrated threshold."""
    raw = max(float(raw), 0.0)
    return raw / (raw + threshold) if raw + threshold > 0 else 0.0


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


def anomaly_post_process(outputs: Sequence[Array], manifest: ModelManifest, batch: int) -> list[DefectOutput]:
    """(score, anomaly_map) -> DefectOutput: label 'anomaly' or the good label, a box when defective."""
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
    threshold = manifest.thresholds.get("defect")
    if good is None or threshold is None or threshold <= 0:
        raise ValueError(f"{where}: an anomaly model needs good_label and a positive thresholds['defect']")
    bad = next((label for label in manifest.labels if label != good), ANOMALY_LABEL)
    if manifest.preprocessing is None:
        raise ValueError(f"{where}: an anomaly model needs image preprocessing")
    input_size = manifest.preprocessing.resize
    results: list[DefectOutput] = []
    for value, amap in zip(raw, maps, strict=True):
        score = normalized_score(float(value), threshold)
        is_defect = float(value) >= threshold
        box = None
        if is_defect:
            base = float(np.median(amap))
            level = max(threshold, base + REGION_LEVEL * (float(amap.max()) - base))
            box = hottest_box(amap, level, input_size)
        results.append(
            DefectOutput(
                label=bad if is_defect else good,
                is_defect=is_defect,
                score=round(score if is_defect else 1.0 - score, 6),
                scores={bad: round(score, 6), good: round(1.0 - score, 6)},
                box=box,
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
