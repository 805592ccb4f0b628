"""Attach a drift reference to a release without retraining: its fit-time look, and thresholds.

Two sets of held-out good inputs of the look the model was fit on, never fitted on:

- the **reference** set gives each signal's distribution (its quantiles) and dead band (0.75 of
  its interquartile range, 1.5 for a parcel line's consecutive frames);
- the **calibration** set gives the thresholds: WINDOWS windows of the gateway's window size are
  drawn from it with replacement, each compared with the reference exactly as a gateway compares
  live frames, and each signal's threshold is the (1 - FALSE_ALARM_RATE / signals) quantile of its
  statistic over those windows (Bonferroni: an unchanged line passes some threshold at one
  evaluation in 1 / FALSE_ALARM_RATE at most).

Signals are computed by the gateway's own runner and code (``edge_agent.runtime.drift``). The
manifest is rewritten in place with the reference, as the golden set does; push the release
again (a new version) for gateways to get it.

    python -m domain_models.drift_reference --model REL.manifest.json
        (--held-out DATA | --reference DIR --calibration DIR | --reference-texts A.jsonl --calibration-texts B.jsonl)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from domain_models.common import PipelineError
from domain_models.golden_set import IMAGE_SUFFIXES, read_texts
from edge_agent.frames import Frame, Image
from edge_agent.runtime import build_runner
from edge_agent.runtime.drift import TOLERANCE_IQR, reference_shape, statistics
from edge_agent.runtime.drift_inputs import Centroids, centroid_distance, observations
from edge_agent.runtime.golden import BATCH
from edge_agent.runtime.text import TextRunner
from protocol.drift import (
    CENTROID_SIGNAL,
    IMAGE_SIGNALS,
    PARCEL_SIGNALS,
    SCORE_SIGNAL,
    DriftReference,
    DriftSignal,
)
from protocol.inference import EMBEDDING_OUTPUT
from protocol.manifest import MANIFEST_SUFFIX, TEXT_TASKS, ManifestError, ModelManifest, load_manifest
from protocol.messages import utcnow

log = logging.getLogger(__name__)

# An input: a frame, an image file (read when its batch runs, so thousands fit in memory), or a note.
Input = Image | Path | str
Inputs = Sequence[Input]

WINDOW = 100  # frames compared at a time: at 2 frames/s, 50 s of a line
STEP = 20  # evaluations once every 20 frames
CONFIRM_AFTER = 3  # a drift is confirmed after 3 evaluations over a threshold in a row (40 frames more)
CLEAR_AFTER = 3
CLEAR_RATIO = 0.8
FALSE_ALARM_RATE = 0.001  # per evaluation, all signals together
WINDOWS = 50_000  # calibration windows: the threshold is about the 8th largest of them per signal
MIN_THRESHOLD = 0.05  # a threshold never asks for less than 5% of the window to have moved
MIN_FRAMES = 40  # per set: fewer cannot describe a distribution by its 5% quantiles
# A stream of consecutive frames (a parcel line) gets a wider dead band: 100 frames show only ~6
# parcels, and which boxes (white board, kraft, a blue tote) happen to pass moves a window's
# brightness, contrast and sharpness by more than 0.75 IQR on an unchanged line.
RUNS_TOLERANCE_IQR = 1.5
_CHUNK = 2_000  # windows evaluated at once (memory: chunk x window x edges booleans)


@dataclass(frozen=True)
class SignalTable:
    """Each input's signals (rows) in the order of ``names``, and whether the model flagged it;
    for a notes model also each note's embedding and label (its centroid distance needs them)."""

    names: tuple[str, ...]
    values: npt.NDArray[np.float64]
    flagged: npt.NDArray[np.bool_]
    embeddings: npt.NDArray[np.float32] | None = None
    labels: tuple[str, ...] = ()


def signal_names(manifest: ModelManifest) -> tuple[str, ...]:
    """What a release of this task is watched on.

    Image models: the frame's look and the score. Parcels: the frame's look and the detector's
    figures (its parcels are reported once, not per frame). Notes: the label's confidence, and
    the embedding's distance to its label's centroid when the graph outputs the embedding.
    """
    if manifest.task in TEXT_TASKS:
        embeds = any(o.name == EMBEDDING_OUTPUT for o in manifest.outputs)
        return (SCORE_SIGNAL, CENTROID_SIGNAL) if embeds else (SCORE_SIGNAL,)
    if manifest.task == "parcels":
        return (*IMAGE_SIGNALS, *PARCEL_SIGNALS)
    return (*IMAGE_SIGNALS, SCORE_SIGNAL)


def contiguous(manifest: ModelManifest) -> bool:
    """Whether the release's inputs come as a stream whose neighbours look alike (a parcel seen in
    ~17 frames in a row): its calibration windows are then runs of consecutive inputs, not draws."""
    return manifest.task == "parcels"


def as_frames(inputs: Inputs, source: str, first: int = 0) -> list[Frame]:
    """Inputs as the frames a runner takes: images (files read here), or texts for text models."""
    now, empty = utcnow(), np.empty((0,), np.uint8)
    frames = []
    for number, item in enumerate(inputs, start=first):
        ref = f"#{number}"
        if isinstance(item, str):
            frames.append(Frame(source, ref, now, empty, item))
        elif isinstance(item, Path):
            frames.append(Frame(source, str(item), now, read_image(item)))
        else:
            frames.append(Frame(source, ref, now, item))
    return frames


def read_image(path: Path) -> Image:
    """One image file as BGR uint8, naming the file when it cannot be read."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise PipelineError(f"{path}: not a readable image")
    return np.asarray(image, np.uint8)


def signal_table(manifest_path: Path, inputs: Inputs, threads: int = 1) -> SignalTable:
    """Run ``inputs`` (in order) through the gateway's runner for the release and read every signal.

    A centroid distance is left nan here: the centroids come from the reference set's embeddings
    (:func:`with_centroids`).
    """
    manifest = load_manifest(manifest_path)
    names = signal_names(manifest)
    wanted = frozenset(names) - {CENTROID_SIGNAL}
    runner = build_runner(manifest_path, "drift-reference", threads)
    rows: list[dict[str, float]] = []
    flagged: list[bool] = []
    embeddings: list[npt.NDArray[np.float32]] = []
    labels: list[str] = []
    for start in range(0, len(inputs), BATCH):
        frames = as_frames(inputs[start : start + BATCH], "drift-reference", start)
        predictions = runner.infer(frames)
        for seen in observations(runner, frames, predictions, wanted):
            rows.append(seen.values)
            flagged.append(seen.flagged)
        if CENTROID_SIGNAL in names and isinstance(runner, TextRunner) and runner.last_embeddings is not None:
            embeddings.append(runner.last_embeddings)
            labels += [p.output.label for p in predictions]
    return SignalTable(
        names=names,
        values=np.array([[row.get(n, np.nan) for n in names] for row in rows], dtype=np.float64).reshape(
            -1, len(names)
        ),
        flagged=np.array(flagged, dtype=bool),
        embeddings=np.concatenate(embeddings) if embeddings else None,
        labels=tuple(labels),
    )


def label_centroids(table: SignalTable, digits: int = 5) -> dict[str, tuple[float, ...]]:
    """Per label, the L2-normalised mean of the unit embeddings of the inputs given that label."""
    if table.embeddings is None:
        raise PipelineError("the release gave no embeddings: no centroids")
    rows = np.asarray(table.embeddings, np.float64)
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    centroids: dict[str, tuple[float, ...]] = {}
    for label in sorted(set(table.labels)):
        mean = rows[np.array([lbl == label for lbl in table.labels])].mean(axis=0)
        mean /= max(float(np.linalg.norm(mean)), 1e-12)
        centroids[label] = tuple(round(float(v), digits) for v in mean)
    return centroids


def with_centroids(table: SignalTable, centroids: Centroids) -> SignalTable:
    """The table with each input's centroid distance filled in."""
    if CENTROID_SIGNAL not in table.names or table.embeddings is None:
        return table
    column = table.names.index(CENTROID_SIGNAL)
    values = table.values.copy()
    values[:, column] = [
        centroid_distance(e, label, centroids)
        for e, label in zip(table.embeddings, table.labels, strict=True)
    ]
    return SignalTable(table.names, values, table.flagged, table.embeddings, table.labels)


def calibrate(
    reference: SignalTable,
    calibration: SignalTable,
    seed: int = 0,
    runs: bool = False,
    centroids: Centroids | None = None,
) -> DriftReference:
    """The drift reference: distributions from ``reference``, thresholds from windows of ``calibration``.

    ``runs``: windows are runs of consecutive calibration inputs (a stream whose neighbours look
    alike, see :func:`contiguous`), else inputs drawn with replacement.
    """
    least = WINDOW + STEP if runs else MIN_FRAMES
    for name, table in (("reference", reference), ("calibration", calibration)):
        if len(table.values) < least:
            raise PipelineError(f"drift {name} set: {len(table.values)} inputs, at least {least} are needed")
    rng = np.random.default_rng(seed)
    if runs:
        starts = rng.integers(0, len(calibration.values) - WINDOW + 1, size=WINDOWS)
        draws = starts[:, None] + np.arange(WINDOW)[None, :]
    else:
        draws = rng.integers(0, len(calibration.values), size=(WINDOWS, WINDOW))
    quantile = 1.0 - FALSE_ALARM_RATE / len(reference.names)
    signals: dict[str, DriftSignal] = {}
    over = np.zeros(WINDOWS, dtype=bool)
    for column, name in enumerate(reference.names):
        shape = reference_shape(
            reference.values[:, column],
            "bulk" if name == SCORE_SIGNAL else "ks",
            tolerance_iqr=RUNS_TOLERANCE_IQR if runs else TOLERANCE_IQR,
        )
        column_values = calibration.values[:, column]
        stats = np.concatenate(
            [statistics(shape, column_values[draws[i : i + _CHUNK]])[0] for i in range(0, WINDOWS, _CHUNK)]
        )
        threshold = float(min(max(np.quantile(stats, quantile), MIN_THRESHOLD), 1.0))
        over |= stats > threshold
        signals[name] = DriftSignal(
            statistic=shape.statistic,
            edges=shape.edges,
            cdf=shape.cdf,
            tolerance=shape.tolerance,
            threshold=round(threshold, 4),
        )
        log.info("drift signal %s: threshold %.4f, tolerance %.4g", name, threshold, shape.tolerance)
    log.info(
        "drift thresholds: %.3f%% of %d calibration windows pass one (target %.3f%%)",
        100 * over.mean(),
        WINDOWS,
        100 * FALSE_ALARM_RATE,
    )
    return DriftReference(
        signals=signals,
        window=WINDOW,
        step=STEP,
        confirm_after=CONFIRM_AFTER,
        clear_after=CLEAR_AFTER,
        clear_ratio=CLEAR_RATIO,
        false_alarm_rate=FALSE_ALARM_RATE,
        flagged_share=round(float(reference.flagged.mean()), 4),
        reference_frames=len(reference.values),
        calibration_frames=len(calibration.values),
        calibration_windows=WINDOWS,
        centroids=None if centroids is None else {k: tuple(v) for k, v in centroids.items()},
    )


def attach(manifest_path: Path, reference: Inputs, calibration: Inputs, seed: int = 0) -> DriftReference:
    """Compute the drift reference of the release at ``manifest_path`` and write it into its manifest."""
    manifest = load_manifest(manifest_path)
    text = manifest.task in TEXT_TASKS
    for name, inputs in (("reference", reference), ("calibration", calibration)):
        if any(isinstance(x, str) != text for x in inputs):
            raise PipelineError(
                f"{manifest_path}: a {manifest.task} model takes {'texts' if text else 'images'} "
                f"as its drift {name} set"
            )
    ref_table, cal_table = signal_table(manifest_path, reference), signal_table(manifest_path, calibration)
    centroids = label_centroids(ref_table) if CENTROID_SIGNAL in ref_table.names else None
    if centroids is not None:
        ref_table, cal_table = with_centroids(ref_table, centroids), with_centroids(cal_table, centroids)
    drift = calibrate(ref_table, cal_table, seed, runs=contiguous(manifest), centroids=centroids)
    updated = manifest.model_copy(update={"drift": drift})
    manifest_path.write_text(
        ModelManifest.model_validate(updated.model_dump()).model_dump_json(indent=2) + "\n"
    )
    log.info(
        "%s: drift reference of %d signals from %d + %d held-out inputs",
        manifest_path.name,
        len(drift.signals),
        drift.reference_frames,
        drift.calibration_frames,
    )
    return drift


def split_held_out(paths: Sequence[Path]) -> tuple[list[Path], list[Path]] | None:
    """Alternate held-out images into the reference and calibration sets; None when too few."""
    if len(paths) < 2 * MIN_FRAMES:
        return None
    return list(paths[0::2]), list(paths[1::2])


def folder_images(folder: Path) -> list[Path]:
    """Every image file under ``folder`` (recursively), sorted by name."""
    if not folder.is_dir():
        raise PipelineError(f"{folder}: not a folder")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise PipelineError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return paths


def _held_out_images(manifest_path: Path, data: Path) -> tuple[list[Path], list[Path], int]:
    """The held-out good images of an anomaly release's calibration record, split as training does,
    and the record's seed (training draws the calibration windows with it)."""
    record = manifest_path.parent / manifest_path.name.replace(MANIFEST_SUFFIX, ".calibration.json")
    try:
        written = json.loads(record.read_text())
        holdout, seed = written["holdout"], int(written["seed"])
    except FileNotFoundError:
        raise PipelineError(f"{manifest_path}: no calibration record {record.name} beside it") from None
    except (ValueError, KeyError, TypeError):
        raise PipelineError(f"{record}: not a calibration record (no 'holdout' list and 'seed')") from None
    paths = [data / str(rel) for rel in holdout]
    split = split_held_out(paths)
    if split is None:
        raise PipelineError(f"{record}: {len(paths)} held-out images, at least {2 * MIN_FRAMES} are needed")
    return split[0], split[1], seed


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: attach a drift reference to one release."""
    parser = argparse.ArgumentParser(
        prog="python -m domain_models.drift_reference", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--model", type=Path, required=True, help="the release's manifest (rewritten in place)"
    )
    parser.add_argument(
        "--held-out",
        type=Path,
        help="data folder of an anomaly release: its calibration record's held-out images",
    )
    parser.add_argument("--reference", type=Path, help="folder of held-out good images for the distributions")
    parser.add_argument(
        "--calibration", type=Path, help="another folder of held-out good images, for the thresholds"
    )
    parser.add_argument("--reference-texts", type=Path, help="text models: JSONL of held-out notes ('text')")
    parser.add_argument("--calibration-texts", type=Path, help="text models: another JSONL of held-out notes")
    parser.add_argument(
        "--seed", type=int, help="seed of the calibration windows (default: the calibration record's, else 0)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        reference: Inputs
        calibration: Inputs
        seed = 0
        if args.held_out is not None:
            reference, calibration, seed = _held_out_images(args.model, args.held_out)
        elif args.reference is not None and args.calibration is not None:
            reference, calibration = folder_images(args.reference), folder_images(args.calibration)
        elif args.reference_texts is not None and args.calibration_texts is not None:
            reference = read_texts(args.reference_texts, 10**6)
            calibration = read_texts(args.calibration_texts, 10**6)
        else:
            parser.error("give --held-out DATA, or --reference and --calibration (or their -texts forms)")
        drift = attach(args.model, reference, calibration, seed if args.seed is None else args.seed)
    except (PipelineError, ManifestError, RuntimeError, ValueError) as exc:
        sys.stderr.write(f"drift reference: {exc}\n")
        return 1
    thresholds = ", ".join(f"{n} {s.threshold:.3f}" for n, s in drift.signals.items())
    sys.stdout.write(f"{args.model.name}: drift reference attached; thresholds {thresholds}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
