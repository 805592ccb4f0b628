"""Held-out simulator inputs for the drift references of the parcels and notes releases.

Neither release kept held-out inputs of its own, and the simulators give endless fresh ones: a
parcel line's consecutive frames (the look its demo line runs: rubber belt, neutral light), and
the notes stream. The seeds below were used by no training, calibration or evaluation of the
bundled releases (parcels: lines 0-23, 55000-55005, 500000-500003; notes: streams 0 and 1000),
nor by the tests (64_101, 64_102) or the figures of docs/drift.md (65_000 on).

    python -m domain_models.drift_sets parcels --model domain_models/parcels/artifacts/parcel-detector-1.1.0.manifest.json
    python -m domain_models.drift_sets notes --model domain_models/notes/artifacts/notes-minilm-1.1.0.manifest.json
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import overload

from domain_models.common import PipelineError
from domain_models.drift_reference import attach
from protocol.manifest import ManifestError
from simulators.notes_line import NotesLine
from simulators.parcel_line import Image, ParcelLine, ParcelLineConfig

# Lines of 300 consecutive frames each (~17 parcels a line): a window is a run of frames, so the
# calibration needs many runs, from many lines (parcel colours, sizes and unreadable labels vary per
# line). Four lines a set gave thresholds an unchanged line passes: a single parcel with an
# unreadable label fills a window's few barcode tries, and four lines hardly held one.
PARCEL_REFERENCE_SEEDS = tuple(range(61_000, 61_008))
PARCEL_CALIBRATION_SEEDS = tuple(range(62_000, 62_012))
PARCEL_FRAMES = 300
NOTES_REFERENCE_SEED, NOTES_CALIBRATION_SEED = 61_000, 62_000
NOTES = 1_000


class ParcelFrames(Sequence[Image]):
    """Frames ``0 .. count - 1`` of each line in turn, rendered on access (a 960x540 frame is 1.5 MB)."""

    def __init__(self, configs: Sequence[ParcelLineConfig], count: int) -> None:
        if count < 0:
            raise ValueError("ParcelFrames: count must be >= 0")
        self._lines = [ParcelLine(c) for c in configs]
        self._count = count

    def __len__(self) -> int:
        return len(self._lines) * self._count

    @overload
    def __getitem__(self, index: int) -> Image: ...

    @overload
    def __getitem__(self, index: slice) -> list[Image]: ...

    def __getitem__(self, index: int | slice) -> Image | list[Image]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} of {len(self)}")
        return self._lines[index // self._count].frame(index % self._count).image


def parcel_frames(seeds: Sequence[int], count: int = PARCEL_FRAMES, unseen: bool = False) -> ParcelFrames:
    """``count`` consecutive frames of each seed's line in the usual look (or ``unseen``'s)."""
    configs = [ParcelLineConfig(seed=s) for s in seeds]
    return ParcelFrames([c.unseen() if unseen else c for c in configs], count)


def notes(seed: int, count: int = NOTES, start: int = 0) -> list[str]:
    """``count`` notes of the simulator's stream with ``seed``."""
    return [n.text for n in NotesLine(seed).notes(count, start)]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: attach the drift reference of a parcels or notes release from held-out inputs."""
    parser = argparse.ArgumentParser(
        prog="python -m domain_models.drift_sets", description=__doc__.split("\n")[0]
    )
    parser.add_argument("kind", choices=("parcels", "notes"))
    parser.add_argument(
        "--model", type=Path, required=True, help="the release's manifest (rewritten in place)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.kind == "parcels":
            drift = attach(
                args.model, parcel_frames(PARCEL_REFERENCE_SEEDS), parcel_frames(PARCEL_CALIBRATION_SEEDS)
            )
        else:
            drift = attach(args.model, notes(NOTES_REFERENCE_SEED), notes(NOTES_CALIBRATION_SEED))
    except (PipelineError, ManifestError, RuntimeError, ValueError) as exc:
        sys.stderr.write(f"drift sets: {exc}\n")
        return 1
    thresholds = ", ".join(f"{n} {s.threshold:.3f}" for n, s in drift.signals.items())
    sys.stdout.write(f"{args.model.name}: drift reference attached; thresholds {thresholds}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
