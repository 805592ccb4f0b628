"""What factoryctl commands share: errors with exit codes, API calls, tables and JSON output."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from protocol.dataset_layout import write_hashed

EXIT_ERROR, EXIT_USAGE, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_CONFLICT, EXIT_ABORTED = 1, 2, 3, 4, 5, 6
STATUS_EXIT = {401: EXIT_AUTH, 403: EXIT_AUTH, 404: EXIT_NOT_FOUND, 409: EXIT_CONFLICT}
_HINTS = {
    401: " (run 'factoryctl login --url URL' with a valid token)",
    403: " (ask an admin for a token with more rights)",
}
# A request's API fields -> (the flag that sets it, its unit), so that a refused value is named
# as the user typed it ("--bake", not "bake_s") and a misread unit shows at once.
FieldFlags = Mapping[str, tuple[str, str]]
ROLLOUT_FLAGS: FieldFlags = {
    "model_name": ("--model", ""),
    "version": ("--version", ""),
    "slot": ("--slot", ""),
    "target.gateways": ("--gateway", ""),
    "target.tags": ("--tag", ""),
    "target.line": ("--line", ""),
    "target.site": ("--site", ""),
    "target.cpu_class": ("--cpu-class", ""),
    "waves": ("--waves", "cumulative counts or percentages, e.g. 1,10%,100%"),
    "bake_s": ("--bake", "seconds"),
    "thresholds.max_failure_ratio": ("--max-failure-ratio", "a fraction: 0.1 = 10%"),
    "thresholds.max_error_rate": ("--max-error-rate", "a fraction: 0.05 = 5%"),
    "thresholds.max_p95_latency_ms": ("--max-p95-ms", "milliseconds"),
    "thresholds.max_defect_rate_shift": ("--max-defect-rate-shift", "a fraction: 0.01 = 1 point, or 'off'"),
    "thresholds.min_defect_rate_parts": ("--min-defect-rate-parts", "parts"),
    "thresholds.install_timeout_s": ("--install-timeout", "seconds"),
}
REQUEST_FLAGS: dict[tuple[str, str], FieldFlags] = {("POST", "/api/v1/rollouts"): ROLLOUT_FLAGS}


class CtlError(Exception):
    """An error to report to the user as one line, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Context:
    """A parsed command and where it reads and writes."""

    args: argparse.Namespace
    env: Mapping[str, str]
    config_path: Path
    url: str
    out: TextIO
    err: TextIO


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """Send a request; return its JSON; raise CtlError with the API's reason and a hint."""
    if "params" in kwargs:
        kwargs["params"] = {k: v for k, v in kwargs["params"].items() if v is not None}
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise CtlError(f"cannot reach the API at {client.base_url}: {exc}") from None
    if response.status_code >= 400:
        raise api_error(response, method, path)
    return response.json() if response.content else None


def api_error(response: httpx.Response, method: str, path: str) -> CtlError:
    """The API's refusal of ``method path`` (a read response) as a CtlError with its reason and a hint."""
    try:
        flags = REQUEST_FLAGS.get((method.upper(), path))
        detail = readable_detail(response.json().get("detail", response.text), flags)
    except (ValueError, AttributeError):
        detail = response.text
    code = response.status_code
    return CtlError(
        f"{method} {path} failed with HTTP {code}: {detail}{_HINTS.get(code, '')}",
        STATUS_EXIT.get(code, EXIT_ERROR),
    )


def readable_detail(detail: Any, flags: FieldFlags | None = None) -> str:
    """The API's reason as text: a validation list becomes one line per problem, naming its field.

    FastAPI answers a request that fails validation with a list of {loc, msg, ...}; printed
    raw it is a Python list a user has to decipher. ``flags``: the request's fields by the
    command-line flag that set them, named instead of the field, with its unit.
    """
    if not isinstance(detail, list):
        return str(detail)
    lines = []
    for err in detail:
        if not isinstance(err, dict):
            lines.append(str(err))
            continue
        loc = [str(part) for part in err.get("loc", []) if part != "body"]
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        lines.append(_problem(loc, msg, flags or {}))
    return "\n  " + "\n  ".join(lines) if len(lines) > 1 else "".join(lines)


def _problem(loc: list[str], msg: str, flags: FieldFlags) -> str:
    """'field: message', or '--flag: message (unit)' for a field a flag sets."""
    # The longest known prefix: 'target.gateways.0' is the first --gateway.
    for end in range(len(loc), 0, -1):
        known = flags.get(".".join(loc[:end]))
        if known is not None:
            flag, unit = known
            return f"{flag}: {msg}" + (f" ({unit})" if unit else "")
    return f"{'.'.join(loc) or 'request'}: {msg}"


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of ``columns`` of ``rows``."""
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def emit(
    ctx: Context, data: Any, rows: list[dict[str, Any]] | None = None, columns: Sequence[str] = ()
) -> None:
    """JSON with --json, else a table of ``rows`` (or ``data``)."""
    if ctx.args.json:
        ctx.out.write(json.dumps(data, indent=2) + "\n")
        return
    rows = data if rows is None else rows
    ctx.out.write((table(rows, columns) if rows else "nothing to show") + "\n")


def download_checked(client: httpx.Client, url: str, sha256: str, path: Path) -> None:
    """Stream ``url`` to ``path``; CtlError (and nothing kept) when the bytes do not hash to ``sha256``."""
    with client.stream("GET", url) as response:
        if response.status_code >= 400:
            response.read()
            raise api_error(response, "GET", url)
        digest = write_hashed(response.iter_bytes(), path)
    if digest != sha256:
        path.unlink(missing_ok=True)
        raise CtlError(f"{url}: the bytes hash to {digest}, expected {sha256}; nothing was kept")
