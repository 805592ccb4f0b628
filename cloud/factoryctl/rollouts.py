"""``factoryctl rollouts ...``: create, list, status (--watch), pause, resume, abort."""

from __future__ import annotations

import argparse
import time
from typing import Any

import httpx

from cloud.factoryctl.output import EXIT_ABORTED, Context, call, emit, table


def _rollout_request(a: argparse.Namespace) -> dict[str, Any]:
    return {
        "model_name": a.model,
        "version": a.version,
        "slot": a.slot,
        "target": {"gateways": a.gateway, "tags": a.tag, "line": a.line, "site": a.site},
        "waves": a.waves,
        "bake_s": a.bake,
        "thresholds": {
            "max_failure_ratio": a.max_failure_ratio,
            "max_error_rate": a.max_error_rate,
            "max_p95_latency_ms": a.max_p95_ms,
            "max_defect_rate_shift": a.max_defect_rate_shift,
            "install_timeout_s": a.install_timeout,
        },
    }


def _show_rollout(ctx: Context, r: dict[str, Any]) -> None:
    if ctx.args.json:
        emit(ctx, r)
        return
    ctx.out.write(
        f"rollout {r['id']}: {r['model_name']} {r['version']} -> slot {r['slot']}  state {r['state'].upper()}  "
        f"wave {r['wave'] + 1}/{len(r['waves'])} {r['waves']}\n"
    )
    if r.get("reason"):
        ctx.out.write(f"reason: {r['reason']}\n")
    rows = [
        {"gateway": gw, **g} for gw, g in sorted(r["gateways"].items(), key=lambda kv: (kv[1]["wave"], kv[0]))
    ]
    if rows:
        ctx.out.write(table(rows, ("gateway", "wave", "status", "reason")) + "\n")
    for e in r.get("events", [])[-10:]:
        ctx.out.write(f"  {e['at']}  {e['kind']:15} {e['message']}\n")


def rollouts_command(ctx: Context, client: httpx.Client) -> int:
    a = ctx.args
    if a.action == "create":
        _show_rollout(ctx, call(client, "POST", "/api/v1/rollouts", json=_rollout_request(a)))
        return 0
    if a.action == "list":
        rows = call(client, "GET", "/api/v1/rollouts")
        emit(ctx, rows, columns=("id", "model_name", "version", "state", "wave", "waves", "created_at"))
        return 0
    if a.action in ("pause", "resume", "abort"):
        _show_rollout(
            ctx, call(client, "POST", f"/api/v1/rollouts/{a.id}/{a.action}", json={"reason": a.reason})
        )
        return 0
    while True:
        r = call(client, "GET", f"/api/v1/rollouts/{a.id}")
        _show_rollout(ctx, r)
        if not a.watch or r["state"] in ("completed", "aborted"):
            return EXIT_ABORTED if r["state"] == "aborted" and a.watch else 0
        ctx.out.flush()
        time.sleep(a.interval)
