"""``factoryctl shadow start|status|stop``: run a version as a challenger beside a slot's model.

``start`` names it in the targeted gateways' desired state (admin); each gateway verifies it as an
install and runs it on the slot's frames after the serving model, its outputs driving nothing.
``status`` prints what the comparison records say per gateway slot; ``stop`` drops it. A
promotion is then a rollout of the challenger's version (``factoryctl rollouts create``).
"""

from __future__ import annotations

import argparse
from typing import Any

import httpx

from cloud.factoryctl.output import Context, call, emit

STATUS_COLUMNS = (
    "gateway_id", "slot", "champion", "challenger", "phase", "compared", "skipped", "agreement",
    "champion_flags", "challenger_flags", "champion_p95_ms", "challenger_p95_ms",
)  # fmt: skip


def add_shadow_parser(resources: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``shadow`` command's arguments (``resources``: the parser's sub-parsers)."""
    shadow = resources.add_parser("shadow", help="challengers run beside a slot's model").add_subparsers(
        dest="action", required=True
    )
    start = shadow.add_parser("start", help="run a registered version as a slot's challenger (admin)")
    start.add_argument("--model", required=True, help="registered model name")
    start.add_argument("--version", required=True, help="registered version to shadow")
    start.add_argument(
        "--slot", default=None, help="gateway model slot (default: the one running this model)"
    )
    stop = shadow.add_parser("stop", help="drop a slot's challenger (admin)")
    stop.add_argument("--slot", required=True, help="gateway model slot")
    for command in (start, stop):
        command.add_argument("--gateway", action="append", default=[], help="a gateway id (repeatable)")
        command.add_argument("--line", default=None, help="gateways of this line")
        command.add_argument("--tag", action="append", default=[], help="gateways with this tag (repeatable)")
    status = shadow.add_parser("status", help="what each challenger measured beside its champion")
    status.add_argument("--line", default=None)
    status.add_argument("--model", default=None)
    status.add_argument("--version", default=None)


def shadow_command(ctx: Context, client: httpx.Client) -> int:
    """Run ``factoryctl shadow ...``."""
    a = ctx.args
    if a.action == "status":
        params = {"line": a.line, "model": a.model, "version": a.version}
        rows = call(client, "GET", "/api/v1/shadow", params=params)
        emit(ctx, rows, [_row(r) for r in rows], STATUS_COLUMNS)
        return 0
    target = {"gateways": a.gateway, "line": a.line, "tags": a.tag}
    if a.action == "start":
        body: dict[str, Any] = {"model_name": a.model, "version": a.version, "slot": a.slot, "target": target}
        change = call(client, "POST", "/api/v1/shadow", json=body)
    else:
        change = call(client, "POST", "/api/v1/shadow/stop", json={"slot": a.slot, "target": target})
    emit(
        ctx,
        change,
        [{"gateway_id": g, "slot": change["slot"]} for g in change["gateways"]],
        ("gateway_id", "slot"),
    )
    if not change["published"]:
        ctx.err.write("warning: the broker did not take every desired state; run the command again\n")
    return 0


def _ref(ref: dict[str, Any] | None) -> str | None:
    return None if ref is None else f"{ref['name']} {ref['version']}"


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        **r,
        "champion": _ref(r["champion"]),
        "challenger": _ref(r["challenger"]),
        "champion_flags": r["champion_flag_rate"],
        "challenger_flags": r["challenger_flag_rate"],
    }
