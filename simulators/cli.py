"""``factory-sim``: run the simulators from a shell.

Subcommands live in the explicit ``SUBCOMMANDS`` registry: adding one (``gateways``, ``demo``)
is one entry with its argument builder and its runner.

    factory-sim camera --serve 8080                       # live MJPEG until Ctrl-C
    factory-sim camera --out-dir frames --count 200       # PNGs + labels.jsonl
    factory-sim camera --video line.avi --count 300       # MJPG .avi + line.avi.labels.jsonl
    factory-sim mvtec --out data/widgets                  # an MVTec-layout folder to train on
    factory-sim lines set line-1 --look unseen            # a running demo's line in another look
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from simulators.camera_line import CameraLine, CameraLineConfig
from simulators.demo import add_demo_arguments, run_demo_from_args
from simulators.demo_lines_cli import LINES_HELP, add_lines_arguments, run_lines
from simulators.fleet import FLEET_HELP, add_fleet_arguments, run_fleet
from simulators.lines_cli import (
    NOTES_HELP,
    PARCELS_HELP,
    add_notes_arguments,
    add_parcels_arguments,
    run_notes,
    run_parcels,
)
from simulators.looks import SwitchableLine
from simulators.mjpeg import MjpegConfig, MjpegServer
from simulators.mvtec import MVTEC_HELP, add_mvtec_arguments, run_mvtec
from simulators.writers import write_frames, write_video

log = logging.getLogger("simulators.cli")


@dataclass(frozen=True)
class Subcommand:
    """One ``factory-sim`` subcommand: its help line, how it adds its flags, and what it runs."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _add_camera_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1, help="line seed: the same seed gives the same frames")
    parser.add_argument("--fps", type=float, default=10.0, help="frames per second (stream and video)")
    parser.add_argument("--defect-rate", type=float, default=0.2, help="share of defective parts, 0..1")
    parser.add_argument("--width", type=int, default=640, help="frame width in pixels")
    parser.add_argument("--height", type=int, default=480, help="frame height in pixels")
    parser.add_argument(
        "--unseen-appearance",
        action="store_true",
        help="mesh belt and warm light, never used for training (for honest evaluation)",
    )
    parser.add_argument("--start", type=int, default=0, help="index of the first frame")
    parser.add_argument("--count", type=int, help="frames to write (with --out-dir or --video)")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (with --serve)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--serve", type=int, metavar="PORT", help="serve MJPEG on PORT (0 = any free) until Ctrl-C"
    )
    target.add_argument(
        "--out-dir", type=Path, metavar="DIR", help="write frame_000001.png... and labels.jsonl"
    )
    target.add_argument("--video", type=Path, metavar="FILE", help="write an MJPG .avi and FILE.labels.jsonl")


def _serve_until_interrupted(server: MjpegServer) -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # SIGINT explicitly too: a process started with SIGINT ignored (a background job, a parent that
    # ignores it) never gets Python's KeyboardInterrupt, and Ctrl-C or `kill -INT` must still stop it.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    server.start()
    sys.stdout.write(
        f"serving {server.url}/stream.mjpg  (frame: /frame.jpg, truth: /truth, look: /look); Ctrl-C stops\n"
    )
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_camera(args: argparse.Namespace) -> int:
    config = CameraLineConfig(
        seed=args.seed, width=args.width, height=args.height, defect_rate=args.defect_rate
    )
    if args.unseen_appearance:
        config = config.unseen_appearance()
    if args.serve is not None:
        # Served, the line can switch looks while it runs (POST /look; `factory-sim lines set`).
        served = SwitchableLine.camera(config)
        _serve_until_interrupted(
            MjpegServer(served, MjpegConfig(host=args.host, port=args.serve, fps=args.fps), args.start)
        )
        return 0
    line = CameraLine(config)
    if args.count is None or args.count < 1:
        raise ValueError("--count N (>= 1) is required with --out-dir and --video")
    if args.out_dir is not None:
        labels = write_frames(line, args.out_dir, args.count, start=args.start)
    else:
        labels = write_video(line, args.video, args.count, fps=args.fps, start=args.start)
    sys.stdout.write(f"wrote {args.count} frames; labels in {labels}\n")
    return 0


CAMERA_HELP = "a camera at an inspection station: serve MJPEG, or write frames / a video with labels"
DEMO_HELP = "the whole platform on one machine: broker, cloud API, ingest and virtual gateways"
SUBCOMMANDS: dict[str, Subcommand] = {
    "camera": Subcommand(CAMERA_HELP, _add_camera_arguments, _run_camera),
    "parcels": Subcommand(PARCELS_HELP, add_parcels_arguments, run_parcels),
    "notes": Subcommand(NOTES_HELP, add_notes_arguments, run_notes),
    "mvtec": Subcommand(MVTEC_HELP, add_mvtec_arguments, run_mvtec),
    "gateways": Subcommand(FLEET_HELP, add_fleet_arguments, run_fleet),
    "demo": Subcommand(DEMO_HELP, add_demo_arguments, run_demo_from_args),
    "lines": Subcommand(LINES_HELP, add_lines_arguments, run_lines),
}


class WithDefaults(argparse.HelpFormatter):
    """Each option's default shown in its help, unless it has none or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if unset or "default" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    """The ``factory-sim`` parser with one sub-parser per registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="factory-sim", description="Factory line simulators.", formatter_class=WithDefaults
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in SUBCOMMANDS.items():
        made = sub.add_parser(name, help=command.help, description=command.help, formatter_class=WithDefaults)
        command.add_arguments(made)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``factory-sim`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return SUBCOMMANDS[args.command].run(args)
    except (ValueError, OSError) as exc:
        # Bad flags or an unwritable path: one clear line, not a traceback.
        parser.error(f"{args.command}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
