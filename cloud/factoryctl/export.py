"""``factoryctl export KIND``: results, notes, dispositions or alerts of a range as CSV, streamed.

The API sends the file a batch of rows at a time; each batch is written as it comes, so an export
of a month needs no more memory here than one of an hour. A file is written under ``FILE.part``
and renamed when the export is complete: an interrupted export never looks like a finished one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

from cloud.factoryctl.output import EXIT_USAGE, Context, CtlError, api_error

KINDS = ("results", "notes", "dispositions", "alerts")
WHEN_HELP = "ISO 8601 date or time, e.g. 2026-01-05 or 2026-01-05T08:00Z (no zone: UTC)"


def add_export_parser(resources: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``export`` command's arguments (``resources``: the parser's sub-parsers)."""
    help_text = "write a CSV of results, notes, dispositions or alerts of a range"
    export = resources.add_parser("export", help=help_text, description=help_text + ", oldest first")
    export.add_argument("kind", choices=KINDS, help="what to export")
    export.add_argument(
        "--since",
        required=True,
        help=f"start: results and notes by capture time, dispositions when set, alerts when opened; {WHEN_HELP}",
    )
    export.add_argument("--until", default=None, help=f"end, exclusive (default: now); {WHEN_HELP}")
    export.add_argument("--line", default=None, help="only this line")
    export.add_argument("--gateway", default=None, help="only this gateway")
    export.add_argument(
        "--out", default="-", metavar="FILE", help="file to write, '-' for standard output (default: -)"
    )


def when(value: str, flag: str) -> str:
    """``value`` of ``flag`` as an ISO 8601 time with a zone (UTC when it has none)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CtlError(f"{flag}: {value!r} is not an {WHEN_HELP}", EXIT_USAGE) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


class RowCounter:
    """Counts CSV records in streamed text: a newline ends one unless it is inside quotes.

    Inside a quoted field a quote is doubled, so an even count of quotes so far means outside.
    """

    def __init__(self) -> None:
        self.records = 0
        self._quotes = 0

    def feed(self, text: str) -> None:
        pieces = text.split("\n")
        for piece in pieces[:-1]:
            self._quotes += piece.count('"')
            if self._quotes % 2 == 0:
                self.records += 1
        self._quotes += pieces[-1].count('"')

    @property
    def rows(self) -> int:
        """Records after the header."""
        return max(self.records - 1, 0)


def export_command(ctx: Context, client: httpx.Client) -> int:
    """Run ``factoryctl export``; the summary goes to stderr (stdout may be the CSV itself)."""
    a = ctx.args
    params = {"since": when(a.since, "--since"), "line": a.line, "gateway": a.gateway}
    if a.until is not None:
        params["until"] = when(a.until, "--until")
    path = f"/api/v1/export/{a.kind}.csv"
    target = None if a.out == "-" else Path(a.out)
    counter = RowCounter()
    try:
        if target is None:
            _stream(ctx, client, path, params, ctx.out, counter)
        else:
            _to_file(ctx, client, path, params, target, counter)
    except httpx.HTTPError as exc:
        ctx.err.write("\n")  # the error goes below the progress line, not over it
        where = "standard output is incomplete" if target is None else f"{target} was not written"
        raise CtlError(f"export interrupted after {counter.rows} rows: {exc}; {where}") from None
    shown = "standard output" if target is None else str(target)
    ctx.err.write(f"\rexported {counter.rows} {a.kind} rows to {shown}\n")
    if a.json and target is not None:
        ctx.out.write(json.dumps({"kind": a.kind, "rows": counter.rows, "out": str(target)}) + "\n")
    return 0


def _to_file(
    ctx: Context, client: httpx.Client, path: str, params: dict[str, Any], target: Path, counter: RowCounter
) -> None:
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("w", encoding="utf-8", newline="") as sink:
            _stream(ctx, client, path, params, sink, counter)
        partial.replace(target)
    except OSError as exc:
        raise CtlError(f"--out: cannot write {target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


def _stream(
    ctx: Context, client: httpx.Client, path: str, params: dict[str, Any], sink: TextIO, counter: RowCounter
) -> None:
    sent = {k: v for k, v in params.items() if v is not None}
    with client.stream("GET", path, params=sent) as response:
        if response.status_code >= 400:
            response.read()
            raise api_error(response, "GET", path)
        for text in response.iter_text():
            sink.write(text)
            counter.feed(text)
            ctx.err.write(f"\r{ctx.args.kind}: {counter.rows} rows")
            ctx.err.flush()
