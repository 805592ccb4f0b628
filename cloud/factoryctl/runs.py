"""``factoryctl runs start|list|show|download``: teach a dataset as the new normal, from the shell.

The same training runs the console's "Teach new normal" starts (``/api/v1/training-runs``):
``start --dataset ID --wait`` queues one and follows it to its end, ``download ID --out DIR``
fetches the candidate's files (each checked against its SHA-256) for an engineer to sign and push
when the cloud holds no signing key; the run view prints the commands for that.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import httpx

from cloud.factoryctl.output import (
    EXIT_ERROR,
    EXIT_USAGE,
    Context,
    CtlError,
    call,
    cell,
    download_checked,
    emit,
)

RUN_COLUMNS = ("id", "dataset_id", "status", "model_name", "model_version", "requested_by", "created_at")
FIGURE_COLUMNS = ("figure", "value")
# The teach flags, each a field of the API's TeachParameters (its defaults are the trainer's).
TEACH_FLAGS: tuple[tuple[str, type, str], ...] = (
    ("seed", int, "split and coreset seed"),
    ("frr", float, "false-reject rate the threshold targets, e.g. 0.01"),
    ("coreset", int, "memory-bank patches"),
    ("max_images", int, "good images used at most"),
    (
        "threshold_folds",
        int,
        "0: threshold on a held-out fifth; K >= 2 (default 5): on every frame, out of fold",
    ),
    ("width", int, "model input width"),
    ("height", int, "model input height"),
    ("model_name", str, "name of the candidate (default: the dataset's model, else defect-patchcore)"),
)
POLL_S = 2.0
DONE = ("succeeded", "failed")


def add_runs_parser(resources: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``runs`` command's arguments (``resources``: the parser's sub-parsers)."""
    runs = resources.add_parser(
        "runs", help="training runs: teach a dataset as the new normal"
    ).add_subparsers(dest="action", required=True)
    start = runs.add_parser("start", help="fit a candidate model on a dataset's frames (operator)")
    start.add_argument(
        "--dataset", required=True, help="the dataset (capture id) whose frames are the new normal"
    )
    for name, kind, text in TEACH_FLAGS:
        start.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None, help=text)
    start.add_argument("--wait", action="store_true", help="follow the run until it succeeds or fails")
    start.add_argument(
        "--timeout", dest="wait_s", type=float, default=3600.0, help="seconds --wait waits at most"
    )
    listing = runs.add_parser("list", help="training runs, newest first")
    listing.add_argument("--dataset", default=None)
    listing.add_argument("--status", default=None, help="queued, running, succeeded or failed")
    runs.add_parser("show", help="one run: figures, lineage, how to push").add_argument("id", type=int)
    download = runs.add_parser("download", help="the candidate's files, checked against their SHA-256")
    download.add_argument("id", type=int)
    download.add_argument(
        "--out", type=Path, required=True, help="folder to create (must not exist, or be empty)"
    )


def runs_command(ctx: Context, client: httpx.Client) -> int:
    """Run ``factoryctl runs ...``."""
    a = ctx.args
    if a.action == "start":
        return _start(ctx, client)
    if a.action == "list":
        params = {"dataset": a.dataset, "status": a.status, "limit": 200}
        emit(ctx, call(client, "GET", "/api/v1/training-runs", params=params)["items"], columns=RUN_COLUMNS)
        return 0
    run = call(client, "GET", f"/api/v1/training-runs/{a.id}")
    if a.action == "show":
        _show(ctx, run)
        return 0 if run["status"] != "failed" else EXIT_ERROR
    return _download(ctx, client, run)


def _start(ctx: Context, client: httpx.Client) -> int:
    a = ctx.args
    body: dict[str, Any] = {"dataset_id": a.dataset}
    body.update(
        {name: getattr(a, name) for name, _kind, _text in TEACH_FLAGS if getattr(a, name) is not None}
    )
    run = call(client, "POST", "/api/v1/training-runs", json=body)
    if a.wait and run["status"] not in DONE:
        run = _follow(ctx, client, run, a.wait_s)
    _show(ctx, run)
    return 0 if run["status"] != "failed" else EXIT_ERROR


def _follow(ctx: Context, client: httpx.Client, run: dict[str, Any], wait_s: float) -> dict[str, Any]:
    """Poll the run until it ends, writing its state and latest trainer line to stderr as they change."""
    deadline = time.monotonic() + wait_s
    said = ""
    while run["status"] not in DONE:
        if time.monotonic() > deadline:
            raise CtlError(f"training run {run['id']} still {run['status']} after {wait_s:g} s; "
                           f"follow it with: factoryctl runs show {run['id']}")  # fmt: skip
        time.sleep(POLL_S)
        run = call(client, "GET", f"/api/v1/training-runs/{run['id']}")
        tail = (run.get("log_tail") or "").strip().splitlines()
        line = f"run {run['id']}: {run['status']}" + (f": {tail[-1][:160]}" if tail else "")
        if line != said:
            ctx.err.write(line + "\n")
            said = line
    return run


def _show(ctx: Context, run: dict[str, Any]) -> None:
    if ctx.args.json:
        emit(ctx, run)
        return
    emit(ctx, run, [run], RUN_COLUMNS)
    figures = [{"figure": k, "value": v} for k, v in sorted((run.get("figures") or {}).items())]
    if figures:
        ctx.out.write("\n" + "\n".join(f"  {f['figure']}: {cell(f['value'])}" for f in figures) + "\n")
    ctx.out.write(f"code {cell(run.get('code_version'))}; parameters {run.get('parameters')}\n")
    if run.get("running_on"):
        ctx.out.write(f"running on: {', '.join(run['running_on'])}\n")
    if run.get("error"):
        ctx.out.write(f"failed: {run['error']}\n")
    if run.get("push_commands"):
        ctx.out.write("awaiting a signature; to sign and push it:\n")
        ctx.out.write("".join(f"  {line}\n" for line in run["push_commands"]))


def _download(ctx: Context, client: httpx.Client, run: dict[str, Any]) -> int:
    target: Path = ctx.args.out
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise CtlError(f"{target}: exists and is not an empty folder; choose another --out", EXIT_USAGE)
    files: dict[str, Any] = run.get("artifacts") or {}
    if not files:
        raise CtlError(f"training run {run['id']} is {run['status']} and has no files to download")
    # Written under OUT.part and renamed when every file checked out: a cut download never looks whole.
    partial = target.with_name(target.name + ".part")
    try:
        partial.mkdir(parents=True, exist_ok=True)
        for name, entry in sorted(files.items()):
            url = f"/api/v1/training-runs/{run['id']}/files/{name}"
            download_checked(client, url, str(entry["sha256"]), partial / name)
            ctx.err.write(f"{name}: {entry['size_bytes']} bytes\n")
        if target.exists():
            target.rmdir()
        partial.rename(target)
    except OSError as exc:
        raise CtlError(f"cannot write {target}: {exc.strerror or exc}") from None
    emit(ctx, {"run": run["id"], "dir": str(target), "files": sorted(files)},
         [{"file": n, "sha256": e["sha256"]} for n, e in sorted(files.items())], ("file", "sha256"))  # fmt: skip
    return 0
