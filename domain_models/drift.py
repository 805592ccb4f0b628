"""``factory-models drift``: will this release work on these images? The gateway's drift check, offline.

    factory-models drift --model M.manifest.json --data DIR   (a folder of images, or notes.jsonl)

The inputs (sorted by name; for a parcels model, consecutive frames of one camera, as it tracks
parcels across them) go through the gateway's own runner and the same drift monitor a
gateway runs (``edge_agent.runtime.drift_monitor``) with the release's drift reference. It prints
``drift: yes`` when the monitor has confirmed a drift by the last input, else ``drift: no``; then
each signal's statistic against its threshold and what moved. Exit status 0 either way, 2 on
bad input (one line on stderr naming what was wrong).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from domain_models.common import PipelineError
from domain_models.drift_reference import Inputs, as_frames, folder_images
from domain_models.golden_set import read_texts
from edge_agent.runtime import ModelLoadError, build_runner
from edge_agent.runtime.drift_inputs import observations
from edge_agent.runtime.drift_monitor import DriftEvaluation, DriftMonitor
from edge_agent.runtime.golden import BATCH
from protocol.drift import DriftReference
from protocol.manifest import TEXT_TASKS, ManifestError, ModelManifest, load_manifest

log = logging.getLogger(__name__)

PROG = "factory-models drift"
CHECKED_TASKS = ("defect", "classification", "parcels", "notes")


class DriftInputError(ValueError):
    """Input the check cannot use; the message names it."""


@dataclass(frozen=True)
class DriftCheck:
    """The monitor's verdict after the last input, and the transitions on the way."""

    inputs: int
    last: DriftEvaluation
    transitions: tuple[tuple[int, DriftEvaluation], ...]  # (input number, evaluation)

    @property
    def drift(self) -> bool:
        """Confirmed by the last input."""
        return self.last.state == "confirmed"


def needed(reference: DriftReference) -> int:
    """Inputs a verdict needs: a full window, then enough evaluations to confirm."""
    return reference.window + (reference.confirm_after - 1) * reference.step


def open_release(manifest_path: Path) -> tuple[ModelManifest, DriftReference]:
    """The release and its drift reference, or a DriftInputError saying why it cannot be checked."""
    try:
        manifest = load_manifest(manifest_path)
    except ManifestError as exc:
        raise DriftInputError(str(exc)) from None
    if manifest.task not in CHECKED_TASKS:
        raise DriftInputError(
            f"{manifest_path}: a {manifest.task} model; the drift check runs {', '.join(CHECKED_TASKS)} models"
        )
    if manifest.drift is None:
        raise DriftInputError(
            f"{manifest_path}: carries no drift reference; attach one with python -m domain_models.drift_reference"
        )
    return manifest, manifest.drift


def read_inputs(manifest: ModelManifest, data: Path) -> Inputs:
    """The folder's images (recursively, sorted), or a text model's notes from a JSONL file."""
    if manifest.task in TEXT_TASKS:
        if not data.is_file():
            raise DriftInputError(f"--data {data}: a {manifest.task} model takes a JSONL file of notes")
        try:
            return read_texts(data, 10**7)
        except (PipelineError, OSError, UnicodeDecodeError) as exc:
            raise DriftInputError(f"--data {data}: {exc}") from None
    if data.is_file():
        raise DriftInputError(f"--data {data}: a file; a {manifest.task} model takes a folder of images")
    try:
        return folder_images(data)
    except PipelineError as exc:
        raise DriftInputError(f"--data {exc}") from None


def check(manifest_path: Path, inputs: Inputs, threads: int = 1) -> DriftCheck:
    """Run ``inputs`` through the release and its drift monitor, in order."""
    manifest, reference = open_release(manifest_path)
    if len(inputs) < needed(reference):
        raise DriftInputError(
            f"{len(inputs)} inputs; the check needs at least {needed(reference)} (a window of "
            f"{reference.window}, then {reference.confirm_after - 1} more evaluations {reference.step} apart)"
        )
    runner = build_runner(manifest_path, "drift-check", threads)  # refuses a bad artifact
    monitor = DriftMonitor(reference)
    transitions: list[tuple[int, DriftEvaluation]] = []
    for start in range(0, len(inputs), BATCH):
        frames = as_frames(inputs[start : start + BATCH], "drift-check", start)
        seen = observations(runner, frames, runner.infer(frames), monitor.names, reference.centroids)
        if len(seen) != len(frames):
            raise DriftInputError(f"{len(seen)} outputs for {len(frames)} inputs from input {start + 1}")
        for number, one in enumerate(seen, start=start + 1):
            transitions.extend((number, e) for e in monitor.observe_inputs([one]))
    last = monitor.last
    if last is None:  # needed() guarantees a full window; kept for the type checker
        raise DriftInputError(f"{len(inputs)} inputs never filled the {reference.window}-input window")
    return DriftCheck(inputs=len(inputs), last=last, transitions=tuple(transitions))


def report(result: DriftCheck, manifest: ModelManifest) -> str:
    """What the command prints: the verdict, each signal's statistic against its threshold, what moved."""
    last, reference = result.last, result.last.reference
    lines = [
        f"drift: {'yes' if result.drift else 'no'}",
        f"model: {manifest.name} {manifest.version}; reference of {reference.reference_frames} held-out "
        f"inputs, thresholds at {reference.false_alarm_rate:.1%} false alarms per evaluation",
        f"window: the last {last.window} of {result.inputs} inputs, evaluated every {reference.step}; "
        f"verdict {last.state}",
        f"{'signal':<12}{'test':<6}{'statistic':>10}{'threshold':>11}  moved",
    ]
    for name, reading in last.readings.items():
        moved = ("up" if reading.up else "down") if reading.moved else "-"
        test = reference.signals[name].statistic
        lines.append(f"{name:<12}{test:<6}{reading.statistic:>10.3f}{reading.threshold:>11.3f}  {moved}")
    lines.append(f"moved: {last.movement()}{_why(last, manifest.task)}")
    for number, evaluation in result.transitions:
        lines.append(f"at input {number}: {evaluation.transition} ({evaluation.movement()})")
    lines.append(last.figures())
    return "\n".join(lines) + "\n"


def _why(last: DriftEvaluation, task: str) -> str:
    if last.cause == "look" and task in TEXT_TASKS:
        return (
            " (the notes changed: their wording, vocabulary or language lies further from the fit-time notes)"
        )
    if last.cause == "look":
        return " (the look of the inputs changed: light, colour, belt or camera)"
    if last.cause == "scores" and task == "parcels":
        return " (the detector's figures moved with the frames' look unchanged: other parcels or labels)"
    if last.cause == "scores":
        return " (the scores of most inputs moved, not only the top: not a burst of defects)"
    if last.flagged_share > max(3 * last.reference.flagged_share, 0.05):
        return " (more parts flagged, but the inputs and the bulk of the scores are as at fit time: defects, not drift)"
    return ""


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Flags of ``factory-models drift``."""
    parser.add_argument(
        "--model", type=Path, required=True, help="the release's manifest (with a drift reference)"
    )
    parser.add_argument(
        "--data", type=Path, required=True, help="folder of images (read recursively), or a notes JSONL file"
    )
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default %(default)s)")


def run(command: str, args: argparse.Namespace) -> int:
    """Run the check; 0 with a verdict, 2 on bad input."""
    try:
        manifest, _ = open_release(args.model)
        inputs = read_inputs(manifest, args.data)
        result = check(args.model, inputs, args.threads)
    except (DriftInputError, PipelineError, ModelLoadError) as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 2
    sys.stdout.write(report(result, manifest))
    return 0
