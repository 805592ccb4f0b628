"""What a drift monitor sees of each input, whatever the runner served it.

- an image model (defect, classification): per frame, its look and the model's score, from the
  predictions (one per frame);
- a parcels model: per frame, its look and what the detector found there (the runner's
  ``last_readings``): it reports a parcel only once, when it crosses the line, so most frames
  have no prediction at all;
- a notes model: per note, the confidence of its label and, when the release's reference has
  centroids, how far the note's embedding lies from its label's fit-time notes (the runner's
  ``last_embeddings``).

The gateway's drift watch, ``factory-models drift`` and the release builder all read inputs
here, so a reference means the same on every side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_agent.frames import Frame
from edge_agent.runtime.drift import frame_signals, is_flagged, prediction_signals
from edge_agent.runtime.model import Prediction
from edge_agent.runtime.parcels import FrameReading, ParcelRunner
from edge_agent.runtime.registry import Runner
from edge_agent.runtime.text import TextRunner
from protocol.drift import (
    CENTROID_SIGNAL,
    CONFIDENCE_SIGNAL,
    DETECTIONS_SIGNAL,
    IMAGE_SIGNALS,
    UNREAD_SIGNAL,
)

Centroids = Mapping[str, Sequence[float]]


@dataclass(frozen=True, slots=True)
class Observation:
    """One input's signals (nan: the input does not have that signal) and whether the model flagged it."""

    values: dict[str, float]
    flagged: bool


def parcel_signals(frame: Frame, reading: FrameReading, names: frozenset[str]) -> dict[str, float]:
    """The signals in ``names`` of one frame of a parcel line: its look and what the detector found."""
    values: dict[str, float] = {}
    if names & set(IMAGE_SIGNALS):
        values.update(zip(IMAGE_SIGNALS, frame_signals(frame.image), strict=True))
    values[DETECTIONS_SIGNAL] = float(reading.detections)
    values[CONFIDENCE_SIGNAL] = reading.confidence
    values[UNREAD_SIGNAL] = 1.0 - reading.reads / reading.attempts if reading.attempts else math.nan
    return {name: value for name, value in values.items() if name in names}


def centroid_distance(embedding: npt.NDArray[np.float32], label: str, centroids: Centroids) -> float:
    """1 - cosine between a note's embedding and its label's centroid (the nearest one for a label
    the reference never gave)."""
    unit = np.asarray(embedding, np.float64)
    unit = unit / max(float(np.linalg.norm(unit)), 1e-12)
    if label in centroids:
        return 1.0 - float(np.dot(unit, np.asarray(centroids[label], np.float64)))
    return 1.0 - max(float(np.dot(unit, np.asarray(c, np.float64))) for c in centroids.values())


def observations(
    runner: Runner,
    frames: Sequence[Frame],
    predictions: Sequence[Prediction],
    names: frozenset[str],
    centroids: Centroids | None = None,
) -> list[Observation]:
    """Each input of the runner's last ``infer(frames)`` call, which gave ``predictions``."""
    if isinstance(runner, ParcelRunner):
        readings = runner.last_readings
        if len(readings) != len(frames):
            raise ValueError(f"{len(readings)} detector readings for {len(frames)} frames")
        return [
            Observation(parcel_signals(f, r, names), False) for f, r in zip(frames, readings, strict=True)
        ]
    seen = [Observation(prediction_signals(p, names), is_flagged(p)) for p in predictions]
    if CENTROID_SIGNAL in names:
        embeddings = runner.last_embeddings if isinstance(runner, TextRunner) else None
        if embeddings is None or len(embeddings) != len(predictions):
            raise ValueError(f"{runner.manifest.name}: the runner gave no embedding for each of its inputs")
        if not centroids:
            raise ValueError(f"a {CENTROID_SIGNAL!r} signal needs the labels' centroids")
        for seen_one, prediction, embedding in zip(seen, predictions, embeddings, strict=True):
            seen_one.values[CENTROID_SIGNAL] = centroid_distance(
                embedding, prediction.output.label, centroids
            )
    return seen
