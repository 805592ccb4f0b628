"""A release's drift reference: what its inputs and scores looked like at fit time, and when to alarm.

It rides in the manifest (``ModelManifest.drift``), so it is signed with the release and installed
with it. The gateway (``edge_agent.runtime.drift_monitor``) compares a rolling window of live frames
with it; ``factory-models drift`` does the same offline on a folder.

Every signal is described the same way: its reference distribution as a few points of its CDF
(``edges`` and the share of reference frames at or below each), a dead band (``tolerance``, in
the signal's units) below which a move does not count, and the threshold its statistic must pass.
Two statistics exist:

- ``ks``: the Kolmogorov-Smirnov distance between the window and the reference at the edges,
  after forgiving moves smaller than the tolerance: the largest share of the window that lies
  further up or down than the reference says. For the input signals (brightness, contrast,
  colour, sharpness), which defects barely move.
- ``bulk``: for the model's own score. How far the window's lower decile rose, or its median
  fell, in reference quantiles (the reference CDF at the window's 10th percentile minus 0.10, or
  0.50 minus it at the window's median), again after the tolerance. A burst of defective parts
  raises the top of the score distribution, not its lower decile, and never lowers the median;
  a new look moves the scores of all parts.

The event a gateway emits on each transition is described at :data:`DRIFT_EVENT_KIND`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from protocol.messages import DriftState, Name, WireModel

# Gateway event kind of a drift transition. Its details (flat, as every event's):
#   slot, model ("name version"), transition (one of DRIFT_TRANSITIONS), state (DriftState),
#   moved ("warmth:up,score:up": the signals over their thresholds, with the direction),
#   cause ("look": an input signal moved, INPUT_SIGNALS; "scores": only signals of the model's
#   outputs moved, the score's bulk or a parcel detector's figures; "" when none),
#   window (frames compared), frames (frames seen since the model loaded), test ("ks+bulk"),
#   false_alarm_rate (per evaluation, at which the thresholds were set),
#   <signal>_statistic and <signal>_threshold for every signal of the reference,
#   score_median, reference_score_median, score_ratio (window / reference median),
#   flagged_share (share of the window's parts flagged defective), reference_flagged_share.
DRIFT_EVENT_KIND = "model_drift"
DRIFT_TRANSITIONS: tuple[str, ...] = ("suspected", "confirmed", "cleared")
DRIFT_STATES: tuple[DriftState, ...] = ("ok", "suspected", "confirmed")
DriftStatistic = Literal["ks", "bulk"]

# Signals of an image frame, computed by edge_agent.runtime.drift.frame_signals.
IMAGE_SIGNALS: tuple[str, ...] = ("brightness", "contrast", "warmth", "tint", "sharpness")
SCORE_SIGNAL = (
    "score"  # the model's monotone score of each input (the defect probability, a note's confidence)
)
# A parcels model is watched per frame (it reports a parcel only once it crosses the line): the
# parcels it found, their mean detector confidence, and the share of its barcode reads that read
# nothing. A signal a frame does not have (no parcel, no read tried) is missing there, not zero.
DETECTIONS_SIGNAL = "detections"
CONFIDENCE_SIGNAL = "confidence"
UNREAD_SIGNAL = "unread"
PARCEL_SIGNALS: tuple[str, ...] = (DETECTIONS_SIGNAL, CONFIDENCE_SIGNAL, UNREAD_SIGNAL)
# A note's embedding distance (1 - cosine) to the fit-time centroid of the label it was given.
CENTROID_SIGNAL = "centroid"
# Signals of the inputs themselves ("look" in an event's cause), not of the model's outputs.
INPUT_SIGNALS: tuple[str, ...] = (*IMAGE_SIGNALS, CENTROID_SIGNAL)
MAX_CENTROID_DIM = 4096
MAX_EDGES = 41


class DriftSignal(WireModel):
    """One signal's reference distribution, dead band and threshold."""

    statistic: DriftStatistic = Field(description="'ks' for input signals, 'bulk' for the model's score")
    edges: tuple[float, ...] = Field(
        min_length=2,
        max_length=MAX_EDGES,
        description="Increasing values of the signal at which the reference CDF is known "
        "(its quantiles at 0, 5%, ..., 100%, ties merged)",
    )
    cdf: tuple[float, ...] = Field(description="Share of reference frames <= each edge")
    tolerance: float = Field(
        ge=0.0, description="Dead band in the signal's units: moves smaller than this do not count"
    )
    threshold: float = Field(gt=0.0, le=1.0, description="The statistic above which the signal moved")

    @model_validator(mode="after")
    def _a_cdf(self) -> DriftSignal:
        if len(self.cdf) != len(self.edges):
            raise ValueError(f"cdf has {len(self.cdf)} values for {len(self.edges)} edges")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges must be strictly increasing")
        if any(b < a for a, b in zip(self.cdf, self.cdf[1:], strict=False)):
            raise ValueError("cdf must not decrease")
        if self.cdf[0] < 0.0 or abs(self.cdf[-1] - 1.0) > 1e-6:
            raise ValueError("cdf must lie in [0, 1] and end at 1 (the largest edge)")
        return self


class DriftReference(WireModel):
    """The fit-time look of a release and the test that compares live frames with it."""

    signals: dict[Name, DriftSignal] = Field(min_length=1, max_length=16)
    window: int = Field(ge=10, le=10_000, description="Frames compared with the reference at a time")
    step: int = Field(ge=1, description="Frames between two evaluations once the window is full")
    confirm_after: int = Field(
        ge=1, description="Consecutive evaluations over a threshold that confirm a suspected drift"
    )
    clear_after: int = Field(
        ge=1,
        description="Consecutive calm evaluations (every statistic <= clear_ratio x threshold) that clear it",
    )
    clear_ratio: float = Field(
        gt=0.0, le=1.0, description="Hysteresis: calm is below this share of the threshold"
    )
    false_alarm_rate: float = Field(
        gt=0.0,
        lt=1.0,
        description="Chance per evaluation that some signal passes its threshold on an unchanged "
        "line, at which the thresholds were set (Bonferroni over the signals)",
    )
    flagged_share: float = Field(
        ge=0.0, le=1.0, description="Share of the reference frames the model flagged"
    )
    centroids: dict[Name, tuple[float, ...]] | None = Field(
        default=None,
        max_length=64,
        description="Text models with a 'centroid' signal: per label, the L2-normalised mean "
        "embedding of the reference notes given that label",
    )
    reference_frames: int = Field(ge=1, description="Held-out good frames the reference was computed on")
    calibration_frames: int = Field(ge=1, description="Other held-out good frames the thresholds came from")
    calibration_windows: int = Field(ge=1, description="Windows drawn from them (with replacement)")

    @model_validator(mode="after")
    def _window_fits(self) -> DriftReference:
        if self.step > self.window:
            raise ValueError(f"step {self.step} is longer than the window {self.window}")
        if CENTROID_SIGNAL in self.signals and not self.centroids:
            raise ValueError(f"a {CENTROID_SIGNAL!r} signal needs the labels' centroids")
        dims = {len(c) for c in (self.centroids or {}).values()}
        if len(dims) > 1 or any(not 1 <= d <= MAX_CENTROID_DIM for d in dims):
            raise ValueError(f"centroids must share one length in 1..{MAX_CENTROID_DIM}, got {sorted(dims)}")
        return self
