"""``factory-sim parcels`` and ``factory-sim notes``: the logistics and maintenance-note lines."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from simulators.mjpeg import MjpegConfig, MjpegServer
from simulators.notes_line import NotesLine, stream_notes
from simulators.parcel_line import ParcelLine, ParcelLineConfig


def _until_signal(stop: threading.Event) -> None:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


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
    stop = threading.Event()
    _until_signal(stop)
    with MjpegServer(
        ParcelLine(config), MjpegConfig(host=args.host, port=args.serve, fps=args.fps)
    ) as server:
        sys.stdout.write(f"parcel line at {server.url}/stream.mjpg (truth: /truth); Ctrl-C stops\n")
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
    stop = threading.Event()
    _until_signal(stop)
    written = stream_notes(args.out_dir, NotesLine(args.seed), args.rate, stop, count=args.count)
    sys.stdout.write(f"wrote {written} notes to {args.out_dir}\n")
    return 0
