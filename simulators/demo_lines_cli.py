"""``factory-sim lines``: the running demo's lines and their looks, from another shell.

    factory-sim lines show                        # each line's cameras and their look
    factory-sim lines set line-1 --look unseen    # line-1's cameras switch from their next frame on

The demo writes where its control endpoint is (``simulators.demo_control``) to
``<workdir>/demo-control.json``; ``--workdir`` names another demo's, as ``factory-sim demo
--workdir`` did.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from simulators.demo_control import STATE_FILE
from simulators.json_http import call_json
from simulators.looks import LOOKS

LINES_HELP = "the running demo's lines and their looks: show them, or change a line's look"
HEADER = ("LINE", "LOOK", "GATEWAY", "KIND", "SINCE FRAME", "CAMERA")


class LinesError(Exception):
    """What stops the command, in one line: no demo, an unknown line or look, a silent camera."""


def add_lines_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``factory-sim lines show`` and ``factory-sim lines set``."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="each line of the demo, its cameras and their look")
    change = actions.add_parser("set", help="change a line's look (its cameras switch at their next frame)")
    change.add_argument("line", metavar="LINE", help="a line of the demo, e.g. line-1")
    change.add_argument("--look", required=True, metavar="LOOK", help=f"one of {', '.join(LOOKS)}")
    for action in (show, change):
        action.add_argument(
            "--workdir", type=Path, default=Path("var/demo"), help="the demo's --workdir (default: var/demo)"
        )


def control_url(workdir: Path) -> str:
    """Where the demo running in ``workdir`` answers, from the file it wrote there."""
    state = workdir / STATE_FILE
    try:
        found = json.loads(state.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LinesError(
            f"no demo running in {workdir} (no {state}); start one with `factory-sim demo`, "
            "or pass the --workdir it was started with"
        ) from None
    except (OSError, ValueError) as exc:
        raise LinesError(f"cannot read {state}: {exc}") from None
    url = found.get("url") if isinstance(found, dict) else None
    if not isinstance(url, str):
        raise LinesError(f"{state} names no control URL: {found!r}")
    return url


def _ask(method: str, url: str, path: str, body: object = None) -> Any:
    try:
        status, answer = call_json(method, f"{url}{path}", body)
    except (OSError, ValueError) as exc:
        raise LinesError(f"no demo answering at {url} ({exc}); has it stopped?") from None
    if status != 200:
        detail = answer.get("detail") if isinstance(answer, dict) else answer
        raise LinesError(str(detail))
    return answer


def show_table(lines: list[dict[str, Any]]) -> str:
    """One row per camera: line, its look, gateway, kind, the first frame in that look, camera URL."""
    rows = [HEADER]
    for line in lines:
        for camera in line["cameras"]:
            look = camera.get("look") or f"? ({camera.get('error', 'no answer')})"
            since = str(camera.get("from_index", "-"))
            rows.append((line["line"], look, camera["gateway"], camera["kind"], since, camera["camera"]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in rows
    )


def run_lines(args: argparse.Namespace) -> int:
    """``factory-sim lines show|set``: 0 when done, 1 with one line on stderr saying why not."""
    try:
        url = control_url(args.workdir)
        if args.action == "show":
            answer = _ask("GET", url, "/lines")
            sys.stdout.write(show_table(answer["lines"]) + "\n")
            sys.stdout.write(f"looks: {', '.join(LOOKS)} (factory-sim lines set LINE --look LOOK)\n")
            return 0
        changed = _ask("POST", url, f"/lines/{quote(args.line, safe='')}/look", {"look": args.look})
        cameras = ", ".join(
            f"{c['gateway']} {c['previous']} -> {changed['look']} from frame {c['from_index']}"
            for c in changed["cameras"]
        )
        sys.stdout.write(f"{changed['line']}: look {changed['look']} ({cameras})\n")
        return 0
    except LinesError as exc:
        sys.stderr.write(f"factory-sim lines: {exc}\n")
        return 1
