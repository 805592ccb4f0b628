"""The demo's line looks: its control endpoint (``simulators.demo_control``) and
``--change-look-after S``, a line whose look the demo changes by itself after S seconds (a line
changing while no one watches), logged when it happens and shown in the banner and status line."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulators.demo_control import ControlError, ControlServer, LineCamera, LineLooks
from simulators.fleet import VirtualGateway
from simulators.looks import LOOKS, LookError, check_look

log = logging.getLogger(__name__)


@dataclass
class LookChange:
    """Line ``line`` switches to ``look`` once the demo has run ``after_s`` seconds."""

    after_s: float
    line: str = "line-1"
    look: str = "unseen"
    done: bool = False

    def __post_init__(self) -> None:
        if not self.after_s > 0:
            raise ValueError(f"--change-look-after must be a positive number of seconds, got {self.after_s}")
        try:
            check_look(self.look)
        except LookError as exc:
            raise ValueError(f"--change-look-to: {exc}") from None

    def check_lines(self, lines: list[str]) -> None:
        """ValueError unless the demo runs the line to change."""
        if self.line not in lines:
            raise ValueError(f"--change-look-line {self.line!r}: the demo's lines are {', '.join(lines)}")

    def describe(self) -> str:
        return f"{self.line} -> {self.look} after {self.after_s:g} s"

    def fire_if_due(self, elapsed_s: float, looks: LineLooks) -> dict[str, Any] | None:
        """Change the look once ``elapsed_s`` reaches ``after_s`` (once only); what changed, or None."""
        if self.done or elapsed_s < self.after_s:
            return None
        self.done = True
        try:
            changed = looks.set_look(self.line, self.look)
        except ControlError as exc:
            log.error("the scheduled look change (%s) failed: %s", self.describe(), exc.detail)
            return None
        log.info("scheduled look change (--change-look-after %g): %s is now %s", self.after_s, self.line,
                 self.look)  # fmt: skip
        return changed


class DemoLooks:
    """The running demo's looks: the control endpoint, its lines' cameras, the scheduled change."""

    def __init__(self, workdir: Path, change: LookChange | None) -> None:
        self.lines = LineLooks([])
        self.control = ControlServer(self.lines, workdir)
        self.change = change

    @property
    def url(self) -> str:
        """Where the control endpoint answers (the API's ``demo_control_url``)."""
        return self.control.url

    def start(self) -> None:
        self.control.start()

    def add_gateways(self, gateways: list[VirtualGateway]) -> None:
        """The gateways' cameras, by line, once the fleet is started."""
        cameras = [
            LineCamera(gw.line, gw.gateway_id, gw.kind, f"http://127.0.0.1:{gw.camera_port}")
            for gw in gateways
        ]
        self.lines.add(cameras)

    def tick(self, elapsed_s: float) -> None:
        """Make the scheduled change once it is due."""
        if self.change is not None:
            self.change.fire_if_due(elapsed_s, self.lines)

    def note(self) -> str:
        """For the status line: the lines not in their normal look (a camera may have restarted)."""
        return self.lines.note()

    def stop(self) -> None:
        self.control.stop()


def add_look_change_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's flags of a scheduled look change."""
    parser.add_argument(
        "--change-look-after",
        type=float,
        metavar="S",
        help="change a line's look by itself after S seconds (see --change-look-line, --change-look-to)",
    )
    parser.add_argument(
        "--change-look-line", metavar="LINE", help="the line --change-look-after changes (default: line-1)"
    )
    parser.add_argument(
        "--change-look-to",
        metavar="LOOK",
        help=f"the look --change-look-after switches to: {', '.join(LOOKS)} (default: unseen)",
    )


def look_change_from_args(args: argparse.Namespace) -> LookChange | None:
    """The scheduled change the flags ask for, or None (ValueError naming a bad flag)."""
    if args.change_look_after is None:
        if args.change_look_line is not None or args.change_look_to is not None:
            raise ValueError("--change-look-line and --change-look-to need --change-look-after S")
        return None
    return LookChange(
        args.change_look_after, args.change_look_line or "line-1", args.change_look_to or "unseen"
    )
