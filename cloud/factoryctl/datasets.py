"""``factoryctl captures start|list|show`` and ``factoryctl datasets list|show|export``.

A capture asks gateways for their next frames of a slot; once a gateway has uploaded them it is a
dataset. ``datasets export --format mvtec DIR`` downloads a dataset's frames (each checked
against its SHA-256) into the folder layout ``factory-models train defect --data DIR`` reads
(``cloud/datasets/layout.py``), written under ``DIR.part`` and renamed when complete.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import httpx

from cloud.datasets.layout import mvtec_layout, shortfall
from cloud.factoryctl.output import (
    EXIT_ERROR,
    EXIT_USAGE,
    Context,
    CtlError,
    api_error,
    call,
    cell,
    download_checked,
    emit,
    table,
)
from protocol.captures import MAX_CAPTURE_FRAMES
from protocol.dataset_layout import Placed, write_folder

CAPTURE_COLUMNS = (
    "id",
    "gateway_id",
    "line",
    "slot",
    "status",
    "frames",
    "requested_frames",
    "label",
    "requested_by",
)
DATASET_COLUMNS = ("id", "gateway_id", "line", "slot", "status", "frames", "total_bytes", "label", "labels")
FILE_COLUMNS = ("name", "sha256", "size_bytes", "captured_at", "model_label", "score", "label")
FILES_PAGE = 500


def add_capture_parsers(resources: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``captures`` and ``datasets`` commands (``resources``: the parser's sub-parsers)."""
    captures = resources.add_parser("captures", help="capture frames on gateways").add_subparsers(
        dest="action", required=True
    )
    start = captures.add_parser("start", help="capture the next N frames of a slot on a line or a gateway")
    start.add_argument("--line", default=None, help="every gateway of this line that has the slot")
    start.add_argument("--gateway", default=None, help="this gateway only")
    start.add_argument("--slot", required=True, help="the model slot whose frames are captured, e.g. defect")
    start.add_argument(
        "--frames", type=int, required=True, help=f"frames per gateway (1-{MAX_CAPTURE_FRAMES})"
    )
    start.add_argument("--label", default=None, help="what the parts are now, e.g. good")
    start.add_argument("--note", default=None, help="why, e.g. 'the line runs good parts now'")
    start.add_argument("--max-bytes", type=int, default=None, help="bytes of frames per gateway at most")
    start.add_argument(
        "--wait", action="store_true", help="wait until every gateway has registered its capture"
    )
    start.add_argument(
        "--timeout", dest="wait_s", type=float, default=600.0, help="seconds --wait waits at most"
    )
    listing = captures.add_parser("list", help="captures, newest first")
    listing.add_argument("--line", default=None)
    listing.add_argument("--gateway", default=None)
    listing.add_argument("--status", default=None, help="requested, complete, stopped or refused")
    captures.add_parser("show", help="one capture").add_argument("id")

    datasets = resources.add_parser("datasets", help="captured frames kept as datasets").add_subparsers(
        dest="action", required=True
    )
    dlist = datasets.add_parser("list", help="datasets, newest first")
    dlist.add_argument("--line", default=None)
    dlist.add_argument("--gateway", default=None)
    dshow = datasets.add_parser("show", help="one dataset and its files")
    dshow.add_argument("id")
    export = datasets.add_parser("export", help="download a dataset as a training folder")
    export.add_argument("id")
    export.add_argument(
        "dir", type=Path, metavar="DIR", help="folder to create (must not exist, or be empty)"
    )
    export.add_argument(
        "--format", choices=("mvtec",), default="mvtec", help="folder layout (default: mvtec)"
    )


def captures_command(ctx: Context, client: httpx.Client) -> int:
    """``factoryctl captures ...``."""
    a = ctx.args
    if a.action == "start":
        return _start(ctx, client)
    if a.action == "list":
        params = {"line": a.line, "gateway": a.gateway, "status": a.status, "limit": 500}
        emit(ctx, call(client, "GET", "/api/v1/captures", params=params)["items"], columns=CAPTURE_COLUMNS)
        return 0
    row = call(client, "GET", f"/api/v1/captures/{a.id}")
    emit(ctx, row, [row], CAPTURE_COLUMNS)
    if not a.json and row.get("reason"):
        ctx.out.write(f"reason: {row['reason']}\n")
    return 0


def _start(ctx: Context, client: httpx.Client) -> int:
    a = ctx.args
    if (a.line is None) == (a.gateway is None):
        raise CtlError("captures start: give exactly one of --line and --gateway", EXIT_USAGE)
    body = {
        "line": a.line, "gateway": a.gateway, "slot": a.slot, "frames": a.frames,
        "label": a.label, "note": a.note, "max_bytes": a.max_bytes,
    }  # fmt: skip
    response = client.post("/api/v1/captures", json={k: v for k, v in body.items() if v is not None})
    if response.status_code >= 400:
        raise api_error(response, "POST", "/api/v1/captures")
    rows: list[dict[str, Any]] = response.json()
    if response.headers.get("x-orders-published") == "false":
        ctx.err.write(
            "warning: the broker did not take the orders now; the cloud's worker sends them again\n"
        )
    if a.wait:
        rows = _wait(ctx, client, [r["id"] for r in rows], a.wait_s)
    emit(ctx, rows, columns=CAPTURE_COLUMNS)
    return 0 if all(r["status"] != "refused" for r in rows) else EXIT_ERROR


def _wait(ctx: Context, client: httpx.Client, ids: list[str], wait_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + wait_s
    while True:
        rows = [call(client, "GET", f"/api/v1/captures/{i}") for i in ids]
        waiting = [r["id"] for r in rows if r["status"] == "requested"]
        if not waiting:
            return rows
        if time.monotonic() > deadline:
            raise CtlError(
                f"captures {', '.join(waiting)} not registered after {wait_s:g} s (still requested)"
            )
        time.sleep(1.0)


def datasets_command(ctx: Context, client: httpx.Client) -> int:
    """``factoryctl datasets ...``."""
    a = ctx.args
    if a.action == "list":
        page = call(
            client, "GET", "/api/v1/datasets", params={"line": a.line, "gateway": a.gateway, "limit": 500}
        )
        emit(ctx, page["items"], [_summary(r) for r in page["items"]], DATASET_COLUMNS)
        return 0
    dataset, files = _dataset_with_files(client, a.id)
    if a.action == "show":
        if a.json:
            emit(ctx, {**dataset, "files": files})
            return 0
        ctx.out.write(table([_summary(dataset)], DATASET_COLUMNS) + "\n")
        ctx.out.write(
            f"captured {cell(dataset['started_at'])} .. {cell(dataset['ended_at'])}; requested by "
            f"{dataset['requested_by']}; note {cell(dataset['note'])}; reason {cell(dataset['reason'])}\n\n"
        )
        ctx.out.write((table(files, FILE_COLUMNS) if files else "no files") + "\n")
        return 0
    return _export(ctx, client, dataset, files)


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    labels = ",".join(f"{k}:{v}" for k, v in sorted((row.get("labels") or {}).items()))
    return {**row, "labels": labels or None}


def _dataset_with_files(client: httpx.Client, dataset_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    files: list[dict[str, Any]] = []
    offset: int | None = 0
    dataset: dict[str, Any] = {}
    while offset is not None:
        params = {"files_offset": offset, "files_limit": FILES_PAGE}
        dataset = call(client, "GET", f"/api/v1/datasets/{dataset_id}", params=params)
        files.extend(dataset.pop("files"))
        offset = dataset["files_next_offset"]
    return dataset, files


def _export(ctx: Context, client: httpx.Client, dataset: dict[str, Any], files: list[dict[str, Any]]) -> int:
    target: Path = ctx.args.dir
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise CtlError(f"{target}: exists and is not an empty folder; choose another DIR", EXIT_USAGE)
    placed = mvtec_layout(files, dataset["label"])
    if not placed:
        raise CtlError(
            f"dataset {dataset['id']}: no labelled file to export (label frames first, or 'skip' only)"
        )
    done = 0

    def fetch(item: Placed, path: Path) -> None:
        nonlocal done
        download_checked(client, f"/api/v1/datasets/{dataset['id']}/files/{item.name}", item.sha256, path)
        done += 1
        ctx.err.write(f"\r{dataset['id']}: {done}/{len(placed)} files")
        ctx.err.flush()

    try:
        write_folder(placed, dataset, target, fetch)
    except OSError as exc:
        raise CtlError(f"cannot write {target}: {exc.strerror or exc}") from None
    counts: dict[str, int] = {}
    for item in placed:
        folder = item.path.rsplit("/", 1)[0]
        counts[folder] = counts.get(folder, 0) + 1
    ctx.err.write("\n")
    emit(ctx, {"dataset": dataset["id"], "dir": str(target), "folders": counts},
         [{"folder": k, "files": v} for k, v in sorted(counts.items())], ("folder", "files"))  # fmt: skip
    problem = shortfall(placed)
    if problem:
        ctx.err.write(f"warning: {problem}\n")
    return 0
