"""``factoryctl``: list gateways and results from the cloud API, as a table or JSON.

factoryctl --url http://127.0.0.1:8000 gateways list
factoryctl results list --line line-1 --limit 20 --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"


class CtlError(Exception):
    """An error to report to the user as one line, with a non-zero exit code."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(prog="factoryctl", description="Talk to the factory-edge cloud API.")
    parser.add_argument(
        "--url", default=None, help=f"API base URL [env FACTORY_API_URL; default {DEFAULT_URL}]"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout in seconds")
    resources = parser.add_subparsers(dest="resource", required=True)
    gateways = resources.add_parser("gateways", help="edge gateways").add_subparsers(
        dest="action", required=True
    )
    gateways.add_parser("list", help="list gateways")
    results = resources.add_parser("results", help="inference results").add_subparsers(
        dest="action", required=True
    )
    res_list = results.add_parser("list", help="list results, newest first")
    res_list.add_argument("--line", help="only this line")
    res_list.add_argument("--gateway", help="only this gateway")
    res_list.add_argument("--limit", type=int, default=20, help="how many (1-1000)")
    return parser


def fetch(client: httpx.Client, path: str, params: Mapping[str, Any] | None = None) -> Any:
    """GET ``path`` and return its JSON; raise CtlError with the API's own reason on failure."""
    try:
        response = client.get(path, params={k: v for k, v in (params or {}).items() if v is not None})
    except httpx.HTTPError as exc:
        raise CtlError(f"cannot reach the API at {client.base_url}: {exc}") from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise CtlError(f"GET {path} failed with HTTP {response.status_code}: {detail}")
    return response.json()


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of ``columns`` of ``rows``."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def run(args: argparse.Namespace, client: httpx.Client, out: TextIO) -> None:
    """Execute a parsed command with ``client``; write the answer to ``out``."""
    if args.resource == "gateways":
        rows: list[dict[str, Any]] = fetch(client, "/api/v1/gateways")
        columns: Sequence[str] = ("id", "line", "online", "agent_version", "session", "last_seen")
    else:
        if not 1 <= args.limit <= 1000:
            raise CtlError(f"--limit must be between 1 and 1000, got {args.limit}")
        page = fetch(
            client, "/api/v1/results", {"line": args.line, "gateway": args.gateway, "limit": args.limit}
        )
        rows = page["items"]
        columns = (
            "captured_at",
            "gateway_id",
            "line",
            "station",
            "model_name",
            "label",
            "is_defect",
            "score",
        )
    if args.json:
        out.write(json.dumps(rows, indent=2) + "\n")
    elif rows:
        out.write(table(rows, columns) + "\n")
    else:
        out.write(f"no {args.resource}\n")


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
) -> int:
    """Entry point of ``factoryctl``; ``client`` lets tests pass an in-process one."""
    env = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    url = args.url or env.get("FACTORY_API_URL", DEFAULT_URL)
    try:
        if client is not None:
            run(args, client, sys.stdout)
        else:
            with httpx.Client(base_url=url, timeout=args.timeout) as http:
                run(args, http, sys.stdout)
    except CtlError as exc:
        print(f"factoryctl: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0
