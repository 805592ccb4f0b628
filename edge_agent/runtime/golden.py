"""A release's golden set, run through the gateway's own runner: what it gives against the reference.

The same code computes the reference when a release is built (``domain_models``) and the
figures a gateway checks on install, so both sides mean the same thing by "value" and "label".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge_agent.frames import Frame
from edge_agent.runtime.model import Prediction
from edge_agent.runtime.registry import Runner
from protocol.manifest import GOLDEN_FRAMES_KEY, TEXT_TASKS, GoldenSet, ModelManifest
from protocol.messages import ClassificationOutput, DefectOutput, NotesOutput, ParcelOutput, utcnow

BATCH = 8  # golden inputs per runner call: small enough for a gateway's memory, big enough to be quick
VALUE_DIGITS = 6  # values are recorded in the manifest with this many decimals


class GoldenSetError(RuntimeError):
    """A golden set that cannot be read or run; the message names the file and the problem."""


def golden_value(prediction: Prediction) -> float:
    """The monotone score of one output that a golden set compares.

    Defect models: the probability-like defect score (0.5 at the threshold for anomaly models),
    whichever label won; others: the confidence of the label.
    """
    output = prediction.output
    if isinstance(output, DefectOutput):
        return output.score if output.is_defect else 1.0 - output.score
    if isinstance(output, ClassificationOutput | NotesOutput | ParcelOutput):
        return output.score
    raise GoldenSetError(f"no golden value for output kind {type(output).__name__}")


def read_inputs(manifest_path: Path, manifest: ModelManifest) -> list[Frame]:
    """The golden set's inputs as frames the runner takes (images, or texts for text tasks)."""
    golden = manifest.golden_set
    if golden is None:
        raise GoldenSetError(f"{manifest_path}: the release has no golden set")
    path = manifest_path.parent / golden.inputs
    try:
        if manifest.task in TEXT_TASKS:
            texts = json.loads(path.read_text("utf-8"))
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise GoldenSetError(f"{path}: expected a JSON list of texts")
            return [
                Frame("golden-set", f"{golden.inputs}#{i}", utcnow(), _NO_IMAGE, t)
                for i, t in enumerate(texts)
            ]
        with np.load(path, allow_pickle=False) as archive:
            frames = np.asarray(archive[GOLDEN_FRAMES_KEY])
    except (OSError, ValueError, KeyError) as exc:
        raise GoldenSetError(f"{path}: cannot read golden inputs: {exc}") from None
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise GoldenSetError(f"{path}: expected uint8 frames (N, H, W, 3), got {frames.dtype} {frames.shape}")
    return [Frame("golden-set", f"{golden.inputs}#{i}", utcnow(), f) for i, f in enumerate(frames)]


_NO_IMAGE: npt.NDArray[np.uint8] = np.empty((0,), np.uint8)


def run_inputs(runner: Runner, frames: Sequence[Frame]) -> list[Prediction]:
    """One prediction per frame, in order (a runner that returns another count is an error)."""
    predictions: list[Prediction] = []
    for start in range(0, len(frames), BATCH):
        batch = frames[start : start + BATCH]
        got = runner.infer(batch)
        if len(got) != len(batch):
            raise GoldenSetError(f"{len(got)} outputs for {len(batch)} golden inputs")
        predictions.extend(got)
    return predictions


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Rank correlation with average ranks for ties; 1.0 when both are constant and equal in order."""
    ra, rb = _ranks(np.asarray(a, np.float64)), _ranks(np.asarray(b, np.float64))
    da, db = ra - ra.mean(), rb - rb.mean()
    denominator = float(np.sqrt((da * da).sum() * (db * db).sum()))
    if denominator == 0.0:
        return 1.0 if np.array_equal(ra, rb) else 0.0
    return float((da * db).sum() / denominator)


def _ranks(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    for value in np.unique(x):  # ties share their average rank
        tied = x == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


@dataclass(frozen=True)
class GoldenFigures:
    """A build's outputs on a golden set against the reference's, and the manifest's tolerances."""

    inputs: int
    rank_correlation: float
    decisive: int
    disagreements: int
    max_value_diff: float
    build_drift: float
    min_rank_correlation: float
    max_disagreements: int
    max_build_drift: float

    @property
    def passed(self) -> bool:
        """Ranks as the reference did, keeps decisive labels, and computes what its builder computed."""
        return (
            self.rank_correlation >= self.min_rank_correlation
            and self.disagreements <= self.max_disagreements
            and self.build_drift <= self.max_build_drift
        )

    def describe(self) -> str:
        """One line with the figures and the tolerances they met or missed."""
        return (
            f"golden set of {self.inputs}: rank correlation with the reference {self.rank_correlation:.4f} "
            f"(needs >= {self.min_rank_correlation}), {self.disagreements} of {self.decisive} decisive "
            f"labels differ (allowed {self.max_disagreements}), scores up to {self.build_drift:.4f} from "
            f"the build's own (allowed {self.max_build_drift}), up to {self.max_value_diff:.4f} from the reference's"
        )

    def details(self) -> dict[str, float | int | bool]:
        """The figures as event details."""
        return {
            "golden_inputs": self.inputs,
            "golden_rank_correlation": round(self.rank_correlation, 6),
            "golden_decisive": self.decisive,
            "golden_disagreements": self.disagreements,
            "golden_max_value_diff": round(self.max_value_diff, 6),
            "golden_build_drift": round(self.build_drift, 6),
            "golden_passed": self.passed,
        }


def compare(golden: GoldenSet, predictions: Sequence[Prediction]) -> GoldenFigures:
    """The figures of ``predictions`` (one per golden input, in order) against the reference."""
    if len(predictions) != len(golden.reference):
        raise GoldenSetError(f"{len(predictions)} outputs for {len(golden.reference)} golden references")
    # Rounded as the reference was recorded: ties there (a saturated 1.0) must stay ties here.
    values = [round(golden_value(p), VALUE_DIGITS) for p in predictions]
    expected = [r.value for r in golden.reference]
    decisive = [
        (r.label, p.output.label) for r, p in zip(golden.reference, predictions, strict=True) if r.decisive
    ]
    return GoldenFigures(
        inputs=len(values),
        rank_correlation=spearman(expected, values),
        decisive=len(decisive),
        disagreements=sum(1 for want, got in decisive if want != got),
        max_value_diff=max(abs(a - b) for a, b in zip(expected, values, strict=True)),
        build_drift=max(abs(r.build_value - v) for r, v in zip(golden.reference, values, strict=True)),
        min_rank_correlation=golden.min_rank_correlation,
        max_disagreements=golden.max_disagreements,
        max_build_drift=golden.max_build_drift,
    )


def check_golden_set(runner: Runner, manifest_path: Path) -> GoldenFigures:
    """Run the release's golden set through ``runner`` and compare it with the reference."""
    manifest = runner.manifest
    if manifest.golden_set is None:
        raise GoldenSetError(f"{manifest_path}: the release has no golden set")
    predictions = run_inputs(runner, read_inputs(manifest_path, manifest))
    return compare(manifest.golden_set, predictions)
