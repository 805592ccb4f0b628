"""What each factoryctl command does, against an httpx client of the API."""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from cloud.factoryctl.config import CtlConfig, save_config
from cloud.factoryctl.datasets import captures_command, datasets_command
from cloud.factoryctl.export import export_command
from cloud.factoryctl.notes import notes_command
from cloud.factoryctl.output import (
    EXIT_AUTH,
    EXIT_ERROR,
    EXIT_USAGE,
    STATUS_EXIT,
    Context,
    CtlError,
    call,
    cell,
    emit,
    table,
)
from cloud.factoryctl.push import PushError, prepare_manifest, push, sign, unfilled_card_lines
from cloud.factoryctl.rollouts import rollouts_command
from cloud.factoryctl.runs import runs_command
from cloud.factoryctl.shadow import shadow_command
from protocol.manifest import CARD_PROMPT_MARK
from protocol.signing import SignatureError, generate_private_key, key_id, private_key_pem, public_key_pem

__all__ = ["EXIT_AUTH", "Context", "CtlError", "run"]


def run(ctx: Context, client: httpx.Client) -> int:
    """Execute the parsed command; return the exit code."""
    handler = {
        "login": _login,
        "keys": _keys,
        "models": _models,
        "rollouts": rollouts_command,
        "devices": _devices,
        "gateways": _devices,
        "results": _results,
        "export": export_command,
        "captures": captures_command,
        "datasets": datasets_command,
        "notes": notes_command,
        "runs": runs_command,
        "shadow": shadow_command,
    }[ctx.args.resource]
    return handler(ctx, client)


def _login(ctx: Context, client: httpx.Client) -> int:
    token = ctx.args.token or ctx.env.get("FACTORY_API_TOKEN")
    if not token:
        if not sys.stdin.isatty():
            raise CtlError("login: no token: give --token or set FACTORY_API_TOKEN", EXIT_USAGE)
        token = getpass.getpass("API token: ")
    # Check the token before saving it: a typo should fail here, not at the next command.
    call(client, "GET", "/api/v1/models", headers={"Authorization": f"Bearer {token}"})
    save_config(ctx.config_path, CtlConfig(url=ctx.url, token=token))
    ctx.out.write(f"logged in to {ctx.url}; saved to {ctx.config_path}\n")
    return 0


def key_paths(out: Path) -> tuple[Path, Path]:
    """(private, public) for ``--out``: OUT itself (``.pem`` added when it has no suffix) and
    its stem + ``.pub.pem``, the naming the demo's signing key uses too."""
    private = out if out.suffix else out.with_name(out.name + ".pem")
    return private, private.with_name(private.stem + ".pub.pem")


def _keys(ctx: Context, _client: httpx.Client) -> int:
    private, public = key_paths(ctx.args.out)
    if private.exists() or public.exists():
        raise CtlError(f"{private} or {public} exists; choose another --out (keys are never overwritten)")
    private.parent.mkdir(parents=True, exist_ok=True)
    key = generate_private_key()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_key_pem(key))
    public.write_bytes(public_key_pem(key.public_key()))
    emit(
        ctx,
        {"key_id": key_id(key.public_key()), "private": str(private), "public": str(public)},
        [{"key_id": key_id(key.public_key()), "private": str(private), "public": str(public)}],
        ("key_id", "private", "public"),
    )
    return 0


def _progress(ctx: Context) -> Any:
    def show(name: str, done: int, total: int) -> None:
        if ctx.args.json:
            return
        width = 30
        filled = width * done // max(total, 1)
        # The whole name: two files of one release often differ only at the end.
        ctx.err.write(f"\r{name} [{'#' * filled}{'.' * (width - filled)}] {done * 100 // max(total, 1):3d}%")
        if done >= total:
            ctx.err.write("\n")  # the next output starts on its own line
        ctx.err.flush()

    return show


def _models(ctx: Context, client: httpx.Client) -> int:
    a = ctx.args
    if a.action == "push":
        key_path = a.key or (
            Path(ctx.env["FACTORY_SIGNING_KEY"]) if ctx.env.get("FACTORY_SIGNING_KEY") else None
        )
        if key_path is None:
            raise CtlError("no signing key: pass --key FILE (make one with 'factoryctl keys generate')")
        try:
            manifest = prepare_manifest(a.artifact, a.manifest, a.fill)
            signature = sign(manifest, key_path)
            card = a.card.read_text() if a.card else None
            prompts = unfilled_card_lines(card) if card else []
            if prompts and not a.card_unfilled:
                raise CtlError(
                    f"{a.card}: {len(prompts)} line(s) still marked '{CARD_PROMPT_MARK}', e.g. "
                    f"{prompts[0]!r}: fill them in first, or pass --card-unfilled; a pushed version's card "
                    "cannot change later (nothing was uploaded)",
                    EXIT_USAGE,
                )
            version, created = push(client, a.artifact, manifest, signature, card, _progress(ctx))
        except PushError as exc:
            raise CtlError(str(exc), STATUS_EXIT.get(exc.status or 0, EXIT_ERROR)) from None
        except (SignatureError, OSError) as exc:
            raise CtlError(str(exc)) from None
        verb = "pushed" if created else "already registered (identical)"
        if not a.json:
            ctx.out.write(f"{manifest.name} {manifest.version} {verb}; signed by key {signature.key_id}\n")
            if version.get("signature_warning"):
                ctx.out.write(f"warning: {version['signature_warning']}\n")
        else:
            emit(ctx, version)
        return 0
    if a.action == "list":
        rows = call(client, "GET", "/api/v1/models", params={"q": a.search})
        emit(ctx, rows, columns=("name", "task", "latest", "versions"))
        return 0
    if a.version is None:
        rows = call(client, "GET", f"/api/v1/models/{a.name}/versions")
        emit(ctx, rows, columns=("version", "task", "sha256", "size_bytes", "created_at", "created_by"))
        return 0
    v = call(client, "GET", f"/api/v1/models/{a.name}/versions/{a.version}")
    if a.json:
        emit(ctx, v)
        return 0
    lineage = v.get("lineage") or {}
    ctx.out.write(
        f"{v['name']} {v['version']} ({v['task']})  sha256 {v['sha256']}  {v['size_bytes']} bytes\n"
        f"signed by key {v['signature']['key_id']}; uploaded {v['created_at']} by {v['created_by']}\n"
        f"metrics: {json.dumps(v['metrics'])}\nlineage: parent {lineage.get('parent_version')}, "
        f"data {lineage.get('data_sha256')}, commit {lineage.get('code_commit')}\n"
    )
    ctx.out.write(lineage_text(v))
    ctx.out.write(f"running on: {', '.join(v['running_on']) or 'no gateway'}\n")
    if v.get("card"):
        ctx.out.write("\n" + v["card"].rstrip() + "\n")
    return 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def lineage_text(v: dict[str, Any]) -> str:
    """Dataset -> training run -> artifact, then its shadow runs and rollouts, a line each."""
    chain = [f"dataset {v['dataset_id']}" if v.get("dataset_id") else "dataset unknown (pushed)"]
    if v.get("training_run") is not None:
        chain.append(f"training run {v['training_run']}")
    chain.append(f"artifact {v['sha256'][:12]}")
    lines = ["made: " + " -> ".join(chain)]
    for r in v.get("shadow") or []:
        champion = r["champion"]
        beside = f"{champion['name']} {champion['version']}" if champion else "unknown"
        flags = ""
        if r["champion_flag_rate"] is not None and r["challenger_flag_rate"] is not None:
            flags = f", flags {r['champion_flag_rate']:.1%} -> {r['challenger_flag_rate']:.1%}"
        agreement = "-" if r["agreement"] is None else f"{r['agreement']:.3f}"
        lines.append(
            f"shadow: {r['gateway_id']} slot {r['slot']} beside {beside} ({r['phase'] or 'not reported'}): "
            f"{r['compared']} compared, {r['skipped']} skipped, agreement {agreement}{flags}, "
            f"p95 {_ms(r['champion_p95_ms'])} -> {_ms(r['challenger_p95_ms'])} ms"
        )
    for r in v.get("rollouts") or []:
        gated = ", gated on its shadow run" if r["gated"] else ""
        lines.append(f"rollout: {r['id']} {r['state']} (slot {r['slot']}{gated}) by {r['created_by']}")
    return "".join(line + "\n" for line in lines)


def _devices(ctx: Context, client: httpx.Client) -> int:
    a = ctx.args
    if a.action == "list":
        rows = call(client, "GET", "/api/v1/gateways")
        if a.resource == "gateways":  # the original command keeps its columns for scripts that parse them
            emit(ctx, rows, columns=("id", "line", "online", "agent_version", "session", "last_seen"))
        else:
            # JSON keeps the API's nested machine; the table shows the class rollouts target.
            shown = [{**r, "cpu_class": (r.get("machine") or {}).get("cpu_class")} for r in rows]
            columns = ("id", "line", "site", "tags", "cpu_class", "online", "agent_version", "last_seen")
            emit(ctx, rows, shown, columns=columns)
        return 0
    if a.action == "set":
        changes = {k: v for k, v in (("line", a.line), ("site", a.site), ("tags", a.tag)) if v is not None}
        if not changes:
            raise CtlError("devices set needs --line, --site or --tag", EXIT_USAGE)
        gw = call(client, "PATCH", f"/api/v1/gateways/{a.id}", json=changes)
        emit(ctx, gw, [gw], columns=("id", "line", "site", "tags"))
        return 0
    gw = call(client, "GET", f"/api/v1/gateways/{a.id}")
    ota = call(client, "GET", f"/api/v1/gateways/{a.id}/ota")
    if a.json:
        emit(ctx, {**gw, "ota": ota})
        return 0
    ctx.out.write(
        f"{gw['id']}  line {cell(gw['line'])}  site {cell(gw['site'])}  tags {cell(gw['tags'])}  "
        f"online {cell(gw['online'])}\n"
    )
    ctx.out.write(machine_text(gw.get("machine")))
    reported = (ota.get("reported") or {}).get("slots", {})
    rows = [{"slot": name, "state": slot_summary(s)} for name, s in reported.items()]
    ctx.out.write((table(rows, ("slot", "state")) if rows else "no reported OTA state") + "\n")
    desired = ota.get("desired") or {}
    if desired:
        ctx.out.write(
            f"desired revision {desired['revision']} (rollout {desired.get('rollout_id') or '-'})\n"
        )
    for e in ota["history"][:10]:
        ctx.out.write(f"  {e['timestamp']}  {e['level']:7} {e['kind']:20} {e['message']}\n")
    return 0


def memory_text(size: int | None) -> str:
    """Bytes as an operator reads memory: '15.6 GiB', '512 MiB'."""
    if size is None:
        return "-"
    gib = size / 2**30
    return f"{gib:.1f} GiB" if gib >= 1 else f"{size / 2**20:.0f} MiB"


def machine_text(machine: dict[str, Any] | None) -> str:
    """A gateway's machine as ``devices show`` prints it, a few lines."""
    if not machine:
        return "machine: not reported (the gateway has sent no birth yet)\n"
    arch = f" ({machine['arch']})" if machine.get("arch") else ""
    return (
        f"machine: {machine.get('cpu_model') or 'unknown CPU'}{arch}\n"
        f"  cpu class {cell(machine.get('cpu_class'))}  cores {cell(machine.get('cores'))}  "
        f"memory {memory_text(machine.get('memory_bytes'))}\n"
        f"  features {cell(machine.get('features'))}\n"
    )


def _results(ctx: Context, client: httpx.Client) -> int:
    a = ctx.args
    if not 1 <= a.limit <= 1000:
        raise CtlError(f"--limit must be between 1 and 1000, got {a.limit}")
    page = call(
        client, "GET", "/api/v1/results", params={"line": a.line, "gateway": a.gateway, "limit": a.limit}
    )
    emit(
        ctx,
        page["items"],
        columns=("captured_at", "gateway_id", "line", "station", "model_name", "label", "is_defect", "score"),
    )
    return 0


def _version(ref: dict[str, Any] | None) -> str:
    return str(ref.get("version")) if ref else "-"


def slot_summary(slot: dict[str, Any]) -> str:
    """One slot in words. A refused or rolled-back update leaves the old model serving: say that,
    rather than a bare phase "failed" that reads as if the gateway were down."""
    running = f"running {_version(slot.get('active'))}" if slot.get("active") else "no model"
    phase, target, error = slot.get("phase"), slot.get("target"), slot.get("error")
    previous = f" (previous {_version(slot.get('previous'))})" if slot.get("previous") else ""
    if phase == "failed":
        update = f"last update {_version(target)}" if target else "last update"
        return f"{running} · {update} refused: {error or 'no reason given'}"
    if phase == "rolled_back":
        update = f"update {_version(target)}" if target else "last update"
        return f"{running} · {update} rolled back: {error or 'no reason given'}"
    if phase in ("idle", "committed", None):
        return running + previous
    return f"{running} · installing {_version(target)}: {str(phase).replace('_', ' ')}"
