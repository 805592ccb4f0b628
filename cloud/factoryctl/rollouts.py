"""``factoryctl rollouts ...``: create, list, status (--watch), pause, resume, abort."""

from __future__ import annotations

import argparse
import time
from typing import Any

import httpx

from cloud.factoryctl.output import EXIT_ABORTED, EXIT_USAGE, Context, CtlError, call, emit, table

NO_TARGET_HINT = "give --gateway, --line, --site, --tag or --cpu-class ('factoryctl devices list' shows them)"


# Shadow gates of a promotion (cloud.ota.schemas.ShadowGates): flag, field, type, help. Only the
# gates given are sent, so the others keep the API's defaults; 'off' sends null (gate off).
GATE_FLAGS: tuple[tuple[str, str, str, str], ...] = (
    ("--gate-min-frames", "min_frames", "int", "least frames compared per gateway (API default 500)"),
    ("--gate-max-flag-shift", "max_flag_rate_shift", "number",
     "largest difference of the shares each model flags, a fraction: 0.05 = 5 points (default 0.05)"),
    ("--gate-min-agreement", "min_agreement", "number", "least share of frames with the same verdict"),
    ("--gate-max-p95-ratio", "max_p95_ratio", "number", "largest challenger/champion p95 latency (default 2)"),
    ("--gate-max-p95-ms", "max_p95_ms", "number", "largest challenger p95 latency, ms"),
    ("--gate-max-error-rate", "max_error_rate", "number", "largest share of frames it raised on (default 0)"),
    ("--gate-min-labelled-accuracy", "min_labelled_accuracy", "number",
     "least share of labelled disagreements the challenger got right"),
    ("--gate-min-labelled", "min_labelled", "int", "labelled disagreements that accuracy needs (default 10)"),
)  # fmt: skip
OFF = "off"


def add_gate_arguments(create: argparse.ArgumentParser) -> None:
    """``rollouts create``'s promotion gates: any of them makes the rollout a gated promotion."""
    group = create.add_argument_group(
        "promotion gates",
        "refuse the rollout unless the version's shadow run passed these on every targeted gateway "
        "('factoryctl shadow status' shows the figures); --shadow-gates alone uses the defaults",
    )
    group.add_argument("--shadow-gates", action="store_true", help="gate on the shadow run, default gates")
    for flag, _field, kind, text in GATE_FLAGS:
        metavar = "N" if kind == "int" else "X|off"
        group.add_argument(flag, default=None, metavar=metavar, help=text)


def _gates(a: argparse.Namespace) -> dict[str, Any] | None:
    given = {field: getattr(a, flag[2:].replace("-", "_")) for flag, field, _k, _t in GATE_FLAGS}
    given = {field: value for field, value in given.items() if value is not None}
    if not (given or a.shadow_gates):
        return None
    kinds = {field: kind for _f, field, kind, _t in GATE_FLAGS}
    return {field: _gate_value(field, text, kinds[field]) for field, text in given.items()}


def _gate_value(field: str, text: str, kind: str) -> float | int | None:
    if text.strip().lower() == OFF and kind == "number":
        return None
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        expected = "a whole number" if kind == "int" else "a number or 'off'"
        raise CtlError(
            f"--gate-{field.replace('_', '-')}: expected {expected}, got {text!r}", EXIT_USAGE
        ) from None


def _rollout_request(a: argparse.Namespace) -> dict[str, Any]:
    return {
        "gates": _gates(a),
        "model_name": a.model,
        "version": a.version,
        "slot": a.slot,
        "target": {
            "gateways": a.gateway,
            "tags": a.tag,
            "line": a.line,
            "site": a.site,
            "cpu_class": a.cpu_class,
        },
        "waves": a.waves,
        "bake_s": a.bake,
        "thresholds": {
            "max_failure_ratio": a.max_failure_ratio,
            "max_error_rate": a.max_error_rate,
            "max_p95_latency_ms": a.max_p95_ms,
            "max_defect_rate_shift": a.max_defect_rate_shift,
            "min_defect_rate_parts": a.min_defect_rate_parts,
            "install_timeout_s": a.install_timeout,
        },
    }


def wave_text(r: dict[str, Any]) -> str:
    """The current wave, 1-based as every view shows it: "1/2"."""
    return f"{r['wave'] + 1}/{len(r['waves'])}"


REASON_WIDTH = 64  # wide enough for an engine abort's wave, count and the first cause


def short(text: str | None, width: int = REASON_WIDTH) -> str | None:
    """``text`` on one line, cut to ``width`` characters with an ellipsis (the table stays readable)."""
    if not text:
        return None
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def progress_text(r: dict[str, Any]) -> str:
    """How far a listed rollout got: "3/5 installed, 1 failed" or, aborted, what the abort did."""
    p = r.get("progress") or {}
    if not p:
        return "-"
    if p.get("installed") is None:
        return f"{p['started']}/{p['planned']} started; {p.get('outcome') or 'aborted'}"
    bad = f", {p['bad']} failed or unhealthy" if p.get("bad") else ""
    return f"{p['installed']}/{p['planned']} installed{bad}"


def render_rollout(r: dict[str, Any]) -> str:
    """The human view of one rollout: header, gateways by wave, the last events."""
    lines = [
        f"rollout {r['id']}: {r['model_name']} {r['version']} -> slot {r['slot']}  state {r['state'].upper()}  "
        f"wave {wave_text(r)} {r['waves']}"
    ]
    if r.get("reason"):
        lines.append(f"reason: {r['reason']}")
    rows = [
        {"gateway": gw, **g}  # the API numbers a gateway's wave from 1 already
        for gw, g in sorted(r["gateways"].items(), key=lambda kv: (kv[1]["wave"], kv[0]))
    ]
    if rows:
        lines.append(table(rows, ("gateway", "wave", "status", "reason")))
    lines += [f"  {e['at']}  {e['kind']:15} {e['message']}" for e in r.get("events", [])[-10:]]
    return "\n".join(lines) + "\n"


def _show_rollout(ctx: Context, r: dict[str, Any]) -> None:
    if ctx.args.json:
        emit(ctx, r)
        return
    ctx.out.write(render_rollout(r))


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """One line per thing that changed between two polls (for --watch into a pipe or a log)."""
    lines = []
    if (before["state"], before["wave"]) != (after["state"], after["wave"]):
        lines.append(f"rollout {after['id']}: state {after['state'].upper()}  wave {wave_text(after)}")
    for gw, g in sorted(after["gateways"].items()):
        old = before["gateways"].get(gw, {})
        if (old.get("status"), old.get("reason")) != (g.get("status"), g.get("reason")):
            reason = f": {g['reason']}" if g.get("reason") else ""
            lines.append(f"  {gw} (wave {g['wave']}) {g.get('status')}{reason}")
    seen = {(e["at"], e["kind"], e["message"]) for e in before.get("events", [])}
    lines += [
        f"  {e['at']}  {e['kind']:15} {e['message']}"
        for e in after.get("events", [])
        if (e["at"], e["kind"], e["message"]) not in seen
    ]
    return lines


def _watch(ctx: Context, client: httpx.Client, rollout_id: str, interval: float) -> int:
    """Poll until the rollout ends. On a terminal the full view is redrawn; into a pipe or a
    file only what changed is printed, one line each, so a log of a long rollout stays readable."""
    tty = ctx.out.isatty() and not ctx.args.json
    last: dict[str, Any] | None = None
    while True:
        r = call(client, "GET", f"/api/v1/rollouts/{rollout_id}")
        if ctx.args.json:
            if r != last:
                emit(ctx, r)
        elif tty:
            ctx.out.write("\033[H\033[J" + render_rollout(r))  # clear the screen, then redraw
        elif last is None:
            ctx.out.write(render_rollout(r))
        else:
            ctx.out.write("".join(line + "\n" for line in _changes(last, r)))
        ctx.out.flush()
        last = r
        if r["state"] in ("completed", "aborted"):
            return EXIT_ABORTED if r["state"] == "aborted" else 0
        time.sleep(interval)


def rollouts_command(ctx: Context, client: httpx.Client) -> int:
    a = ctx.args
    if a.action == "create":
        if not (a.gateway or a.tag or a.line or a.site or a.cpu_class):
            raise CtlError(f"rollouts create: no target: {NO_TARGET_HINT}", EXIT_USAGE)
        try:
            _show_rollout(ctx, call(client, "POST", "/api/v1/rollouts", json=_rollout_request(a)))
        except CtlError as exc:
            if "matches no gateway" in str(exc):
                raise CtlError(f"{exc}; {NO_TARGET_HINT}", exc.code) from None
            raise
        return 0
    if a.action == "list":
        data = call(client, "GET", "/api/v1/rollouts")
        # JSON keeps the API's 0-based index and the whole reason.
        rows = [
            {**r, "wave": wave_text(r), "progress": progress_text(r), "reason": short(r.get("reason"))}
            for r in data
        ]
        columns = ("id", "model_name", "version", "state", "wave", "progress", "reason", "created_at")
        emit(ctx, data, rows, columns=columns)
        return 0
    if a.action in ("pause", "resume", "abort"):
        _show_rollout(
            ctx, call(client, "POST", f"/api/v1/rollouts/{a.id}/{a.action}", json={"reason": a.reason})
        )
        return 0
    if a.watch:
        return _watch(ctx, client, a.id, a.interval)
    _show_rollout(ctx, call(client, "GET", f"/api/v1/rollouts/{a.id}"))
    return 0
