"""Drift figures of a release on simulated lines it was not calibrated on (docs/drift.md, "Measured").

Every frame runs through the gateway's runner and the same drift monitor a gateway runs:

- unchanged lines (with their usual 20% defective parts): transitions per 10,000 frames;
- BEFORE frames of the usual look, then a new belt and light, dim light, or 50% defective parts:
  frames from the change to the confirmed verdict (or none);
- an unchanged line through JPEG at quality 85 (the demo's MJPEG): transitions, largest ratio;
- the per-frame cost of the input signals on a 640x480 frame.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from domain_models.drift_reference import signal_table
from edge_agent.runtime.drift import frame_signals
from edge_agent.runtime.drift_monitor import DriftMonitor
from protocol.drift import DriftReference
from protocol.manifest import load_manifest
from simulators.camera_line import CameraLineConfig
from simulators.line_frames import Image, LineFrames

BEFORE = 200  # frames of the usual look before a change: ten evaluations, the change on a boundary
AFTER = 300
JPEG_QUALITY = 85


def jpeg_round_trip(image: Image) -> Image:
    """The frame as an MJPEG camera delivers it: JPEG-encoded at JPEG_QUALITY and decoded."""
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return np.asarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), np.uint8)


def replay(
    manifest: Path, reference: DriftReference, frames: Sequence[Image]
) -> tuple[list[tuple[int, str]], float]:
    """The (frame number, transition) pairs and the largest statistic / threshold over the frames."""
    table = signal_table(manifest, frames)
    monitor = DriftMonitor(reference)
    transitions, worst = [], 0.0
    for number, (row, flagged) in enumerate(zip(table.values, table.flagged, strict=True), start=1):
        evaluation = monitor.add(dict(zip(table.names, row, strict=True)), bool(flagged))
        if evaluation is None:
            continue
        worst = max(worst, evaluation.ratio)
        if evaluation.transition is not None:
            transitions.append((number, evaluation.transition))
    return transitions, worst


def seeds(text: str) -> list[int]:
    """'4011-4017' or '4011,4013'."""
    if "-" in text:
        first, last = (int(part) for part in text.split("-", 1))
        return list(range(first, last + 1))
    return [int(part) for part in text.split(",")]


def signal_cost_ms(repeats: int = 7, frames: int = 50) -> tuple[float, float]:
    """Best and median milliseconds of frame_signals per 640x480 frame."""
    images = LineFrames((CameraLineConfig(seed=1), 0, frames))[:]
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for image in images:
            frame_signals(image)
        runs.append((time.perf_counter() - started) * 1000 / frames)
    return min(runs), float(np.median(runs))


def main(argv: list[str] | None = None) -> int:
    """Print the figures."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.drift_figures", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model", type=Path, required=True, help="release manifest with a drift reference")
    parser.add_argument("--unchanged-seeds", type=seeds, default=seeds("4011-4017"), help="e.g. 4011-4017")
    parser.add_argument("--frames", type=int, default=1500, help="frames per unchanged line")
    parser.add_argument(
        "--look-seeds", type=seeds, default=seeds("4011-4017"), help="lines whose look changes"
    )
    parser.add_argument("--jpeg-seed", type=int, default=4014, help="unchanged line seen through JPEG")
    args = parser.parse_args(argv)
    reference = load_manifest(args.model).drift
    if reference is None:
        parser.error(f"{args.model}: carries no drift reference")
    out = sys.stdout
    total = suspected = confirmed = 0
    for seed in args.unchanged_seeds:
        found, worst = replay(
            args.model, reference, LineFrames((CameraLineConfig(seed=seed), 0, args.frames))
        )
        total += args.frames
        suspected += sum(t == "suspected" for _, t in found)
        confirmed += sum(t == "confirmed" for _, t in found)
        out.write(
            f"unchanged seed {seed}: {args.frames} frames, transitions {found}, largest ratio {worst:.2f}\n"
        )
    out.write(
        f"unchanged: {total} frames, {suspected} suspected, {confirmed} confirmed: "
        f"{suspected * 1e4 / total:.2f} and {confirmed * 1e4 / total:.2f} per 10,000 frames\n"
    )
    for seed in args.look_seeds:
        line = CameraLineConfig(seed=seed)
        for name, changed in (
            ("new belt + light", line.unseen_appearance()),
            ("dim light", replace(line, lighting="dim")),
            ("50% defective", replace(line, defect_rate=0.5)),
        ):
            found, _ = replay(args.model, reference, LineFrames((line, 0, BEFORE), (changed, BEFORE, AFTER)))
            after = [(n - BEFORE, t) for n, t in found if n > BEFORE]
            confirmed_at = next((n for n, t in after if t == "confirmed"), None)
            out.write(f"seed {seed}, {name}: confirmed {confirmed_at} frames after the change; {after}\n")
    jpeg = LineFrames((CameraLineConfig(seed=args.jpeg_seed), 0, 1000), through=jpeg_round_trip)
    found, worst = replay(args.model, reference, jpeg)
    out.write(
        f"JPEG {JPEG_QUALITY}, seed {args.jpeg_seed}: 1000 frames, {found}, largest ratio {worst:.2f}\n"
    )
    best, median = signal_cost_ms()
    out.write(f"input signals of a 640x480 frame: best {best:.3f} ms, median {median:.3f} ms\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
