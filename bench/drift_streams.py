"""Drift figures of the parcels and notes releases on streams they were not calibrated on
(docs/drift.md, "Parcel and notes slots").

Every input runs through the gateway's runner and the same drift monitor a gateway runs (a fresh
runner and monitor per stream: a parcel tracker follows one camera):

- unchanged streams (a parcel line's consecutive frames of the usual look; the notes stream):
  transitions per 10,000 inputs and the largest statistic / threshold;
- BEFORE inputs of the usual stream, then a changed one (a parcel line's new belt and light,
  ``ParcelLineConfig.unseen``; notes with a share written in another site's German shorthand,
  ``NotesLine(german=...)``): inputs from the change to the suspected and confirmed verdicts.

    python -m bench.drift_streams parcels --model M.manifest.json --unchanged-seeds 67000-67009 --inputs 600
    python -m bench.drift_streams notes --model M.manifest.json --unchanged-seeds 65000-65009 --german 1.0 0.5 0.25
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from bench.drift_figures import seeds
from domain_models.drift_reference import Input, as_frames
from edge_agent.runtime import build_runner
from edge_agent.runtime.drift_inputs import observations
from edge_agent.runtime.drift_monitor import DriftMonitor
from edge_agent.runtime.golden import BATCH
from protocol.drift import DriftReference
from protocol.manifest import load_manifest
from simulators.notes_line import NotesLine
from simulators.parcel_line import ParcelLine, ParcelLineConfig

BEFORE = 200  # usual inputs before a change: ten evaluations, the change on an evaluation boundary
AFTER = 300


@dataclass(frozen=True)
class Replay:
    """The (input number, transition) pairs of one stream and the largest statistic / threshold."""

    transitions: list[tuple[int, str]]
    worst: float

    def after(self, change: int, transition: str) -> int | None:
        """Inputs from the first changed one (number ``change + 1``) to ``transition``, if it came."""
        return next((n - change for n, t in self.transitions if t == transition and n > change), None)


def replay(manifest: Path, reference: DriftReference, inputs: Iterator[Input]) -> Replay:
    """Run ``inputs`` in order through a fresh runner and monitor."""
    runner = build_runner(manifest, "bench", 1)
    monitor = DriftMonitor(reference)
    transitions: list[tuple[int, str]] = []
    worst, number = 0.0, 0
    while batch := list(islice(inputs, BATCH)):
        frames = as_frames(batch, "bench", number)
        seen = observations(runner, frames, runner.infer(frames), monitor.names, reference.centroids)
        for one in seen:
            number += 1
            evaluation = monitor.add(one.values, one.flagged)
            if evaluation is None:
                continue
            worst = max(worst, evaluation.ratio)
            if evaluation.transition is not None:
                transitions.append((number, evaluation.transition))
    return Replay(transitions, worst)


def parcel_stream(seed: int, usual: int, changed: int) -> Iterator[Input]:
    """``usual`` consecutive frames of the line's usual look, then ``changed`` of its unseen one."""
    config = ParcelLineConfig(seed=seed)
    line, new_look = ParcelLine(config), ParcelLine(config.unseen())
    for index in range(usual + changed):
        yield (line if index < usual else new_look).frame(index).image


def note_stream(seed: int, usual: int, changed: int, german: float = 1.0) -> Iterator[Input]:
    """``usual`` notes of the stream, then ``changed`` with ``german`` of them in German shorthand."""
    line, other_site = NotesLine(seed), NotesLine(seed, german=german)
    for index in range(usual + changed):
        yield (line if index < usual else other_site).note(index).text


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.drift_streams", description=__doc__.splitlines()[0]
    )
    parser.add_argument("kind", choices=("parcels", "notes"))
    parser.add_argument("--model", type=Path, required=True, help="release manifest with a drift reference")
    parser.add_argument("--unchanged-seeds", type=seeds, required=True, help="e.g. 65000-65009")
    parser.add_argument("--inputs", type=int, default=1000, help="inputs per unchanged stream")
    parser.add_argument(
        "--changed-seeds", type=seeds, help="streams that change (default: the unchanged seeds)"
    )
    parser.add_argument(
        "--german",
        type=float,
        nargs="+",
        default=[1.0],
        help="notes: shares in German shorthand after the change",
    )
    args = parser.parse_args(argv)
    reference = load_manifest(args.model).drift
    if reference is None:
        parser.error(f"{args.model}: carries no drift reference")
    out = sys.stdout
    stream = parcel_stream if args.kind == "parcels" else note_stream
    total = suspected = confirmed = 0
    worst = 0.0
    for seed in args.unchanged_seeds:
        found = replay(args.model, reference, stream(seed, args.inputs, 0))
        total += args.inputs
        suspected += sum(t == "suspected" for _, t in found.transitions)
        confirmed += sum(t == "confirmed" for _, t in found.transitions)
        worst = max(worst, found.worst)
        out.write(
            f"unchanged seed {seed}: {args.inputs} inputs, {found.transitions}, largest ratio {found.worst:.2f}\n"
        )
        out.flush()
    out.write(
        f"unchanged: {total} inputs, {suspected} suspected, {confirmed} confirmed "
        f"({suspected * 1e4 / total:.2f} and {confirmed * 1e4 / total:.2f} per 10,000 inputs); "
        f"largest ratio {worst:.2f}\n"
    )
    changes = (
        [("new belt + light", None)] if args.kind == "parcels" else [(f"german {g}", g) for g in args.german]
    )
    for name, german in changes:
        found_at: list[int | None] = []
        for seed in args.changed_seeds or args.unchanged_seeds:
            inputs = (
                parcel_stream(seed, BEFORE, AFTER)
                if german is None
                else note_stream(seed, BEFORE, AFTER, german)
            )
            found = replay(args.model, reference, inputs)
            early = [t for n, t in found.transitions if n <= BEFORE]
            at = (found.after(BEFORE, "suspected"), found.after(BEFORE, "confirmed"))
            found_at.append(at[1])
            out.write(
                f"seed {seed}, {name}: suspected after {at[0]}, confirmed after {at[1]}; before it {early}\n"
            )
            out.flush()
        detected = sorted(n for n in found_at if n is not None)
        out.write(
            f"{name}: confirmed on {len(detected)} of {len(found_at)} streams, "
            f"after {detected[0] if detected else '-'}..{detected[-1] if detected else '-'} inputs\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
