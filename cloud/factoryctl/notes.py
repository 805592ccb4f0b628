"""``factoryctl notes export --labelled OUT.jsonl``: the notes operators labelled, as training data.

The file is what ``factory-models train notes --extra OUT.jsonl`` reads: one JSON object a line
with the note's ``text`` and the operator's ``category`` (fields: ``cloud/dispositions/labelled.py``).
It is written under ``OUT.part`` and renamed when complete, so a cut download never looks whole.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx

from cloud.factoryctl.export import WHEN_HELP, when
from cloud.factoryctl.output import Context, CtlError, api_error

PATH = "/api/v1/notes/labelled.jsonl"


def add_notes_parser(resources: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``notes`` command's arguments (``resources``: the parser's sub-parsers)."""
    notes = resources.add_parser("notes", help="maintenance notes").add_subparsers(
        dest="action", required=True
    )
    help_text = "write the notes operators labelled (category) as JSONL, for a notes training run"
    export = notes.add_parser("export", help=help_text, description=help_text)
    export.add_argument("--labelled", type=Path, required=True, metavar="OUT.jsonl", help="file to write")
    export.add_argument("--line", default=None, help="only this line")
    export.add_argument("--since", default=None, help=f"labelled at or after; {WHEN_HELP}")
    export.add_argument("--until", default=None, help=f"labelled before; {WHEN_HELP}")


def notes_command(ctx: Context, client: httpx.Client) -> int:
    """Run ``factoryctl notes export``."""
    a = ctx.args
    params = {"line": a.line}
    if a.since is not None:
        params["since"] = when(a.since, "--since")
    if a.until is not None:
        params["until"] = when(a.until, "--until")
    try:
        response = client.get(PATH, params={k: v for k, v in params.items() if v is not None})
    except httpx.HTTPError as exc:
        raise CtlError(f"notes export: {exc}; {a.labelled} was not written") from None
    if response.status_code >= 400:
        raise api_error(response, "GET", PATH)
    rows = [line for line in response.text.splitlines() if line.strip()]
    target: Path = a.labelled
    partial = target.with_name(target.name + ".part")
    try:
        partial.write_text("".join(f"{line}\n" for line in rows), encoding="utf-8")
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CtlError(f"--labelled: cannot write {target}: {exc.strerror or exc}") from None
    categories: dict[str, int] = {}
    for line in rows:
        category = str(json.loads(line)["category"])
        categories[category] = categories.get(category, 0) + 1
    said = ", ".join(f"{n} {c}" for c, n in sorted(categories.items())) or "none labelled yet"
    ctx.err.write(f"exported {len(rows)} labelled notes to {target} ({said})\n")
    if a.json:
        ctx.out.write(json.dumps({"notes": len(rows), "categories": categories, "out": str(target)}) + "\n")
    return 0
