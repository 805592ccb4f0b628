"""``factory-sim parcels`` and ``factory-sim notes``: the logistics and maintenance-note lines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simulators.looks import SwitchableLine
from simulators.mjpeg import MjpegConfig, MjpegServer
from simulators.net import stop_on_signals
from simulators.notes_line import NotesLine, stream_notes
from simulators.parcel_line import ParcelLineConfig

PARCELS_HELP = "a parcel line (top camera over a conveyor, real barcodes): serve MJPEG"
NOTES_HELP = "operators' maintenance notes dropped into a folder at a steady rate"


def add_parcels_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1, help="line seed: the same seed gives the same frames")
    parser.add_argument("--fps", type=float, default=8.0, help="frames per second")
    parser.add_argument("--unseen", action="store_true", help="belt, light and sizes never used in training")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on")
    parser.add_argument(
        "--serve", type=int, required=True, metavar="PORT", help="serve MJPEG on PORT (0 = any)"
    )


def run_parcels(args: argparse.Namespace) -> int:
    """Serve a parcel line as MJPEG until Ctrl-C/SIGTERM."""
    config = ParcelLineConfig(seed=args.seed)
    if args.unseen:
        config = config.unseen()
    stop = stop_on_signals()
    # Served, the line can switch looks while it runs (POST /look; `factory-sim lines set`).
    with MjpegServer(
        SwitchableLine.parcels(config), MjpegConfig(host=args.host, port=args.serve, fps=args.fps)
    ) as server:
        sys.stdout.write(
            f"parcel line at {server.url}/stream.mjpg (truth: /truth, look: /look); Ctrl-C stops\n"
        )
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    return 0


def add_notes_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1, help="the same seed gives the same notes")
    parser.add_argument("--out-dir", type=Path, required=True, help="folder the notes appear in")
    parser.add_argument("--rate", type=float, default=0.5, help="notes per second")
    parser.add_argument("--count", type=int, help="stop after this many notes (default: run until Ctrl-C)")


def run_notes(args: argparse.Namespace) -> int:
    """Drop generated maintenance notes into a folder (a `notes` source watches it)."""
    stop = stop_on_signals()
    written = stream_notes(args.out_dir, NotesLine(args.seed), args.rate, stop, count=args.count)
    sys.stdout.write(f"wrote {written} notes to {args.out_dir}\n")
    return 0
