"""``factoryctl``: the engineer's and operator's command line for the factory-edge cloud API.

factoryctl login --url http://cloud:8000 --token fe_...
factoryctl keys generate --out ~/.factory/keys/me.pem      # me.pem (private) + me.pub.pem
factoryctl models push model.onnx --manifest model.manifest.json --key ~/.factory/keys/me.pem --fill
factoryctl rollouts create --model defect-cnn --version 1.1 --line line-1 --waves 1,10%,100%
factoryctl rollouts create --model defect-cnn --version 1.2 --cpu-class x86-64-avx512-vnni --waves 1,100%
factoryctl rollouts status ID --watch
factoryctl --json devices list
factoryctl devices show gw-1                               # state, machine (CPU class), OTA
factoryctl devices set gw-1 --line line-2                  # move a gateway to another line (admin)
factoryctl export results --since 2026-01-05 --line line-1 --out results.csv
factoryctl captures start --line line-1 --slot defect --frames 150 --label good --wait
factoryctl datasets export cap-0123456789abcdef --format mvtec data/line-1-good
factoryctl notes export --labelled var/labelled-notes.jsonl --line line-1
factoryctl runs start --dataset cap-0123456789abcdef --wait   # teach it as the new normal
factoryctl shadow start --model defect-patchcore --version 1.2.0 --line line-1
factoryctl shadow status --line line-1

Exit codes: 0 ok, 1 error, 2 usage, 3 not logged in / not allowed, 4 not found, 5 conflict,
6 a watched rollout aborted, 141 the reader of the output went away (e.g. `| head`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from cloud.factoryctl.commands import EXIT_AUTH, Context, CtlError, run
from cloud.factoryctl.config import config_path, load_config
from cloud.factoryctl.datasets import add_capture_parsers
from cloud.factoryctl.export import add_export_parser
from cloud.factoryctl.notes import add_notes_parser
from cloud.factoryctl.rollouts import add_gate_arguments
from cloud.factoryctl.runs import add_runs_parser
from cloud.factoryctl.shadow import add_shadow_parser
from protocol.machine import CPU_CLASSES

__all__ = ["CtlError", "build_parser", "main"]
EXIT_PIPE = 141  # what a shell reports for a tool killed by SIGPIPE


def _fraction_or_off(text: str) -> float | None:
    """A threshold that may be switched off: a number, or 'off' (no limit)."""
    if text.strip().lower() == "off":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a fraction such as 0.01, or 'off'; got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog="factoryctl", description="Talk to the factory-edge cloud API.", epilog=__doc__.split("\n\n")[-1]
    )
    parser.add_argument(
        "--url", default=None, help="API base URL [env FACTORY_API_URL; else the login config]"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout in seconds")
    res = parser.add_subparsers(dest="resource", required=True)

    login = res.add_parser("login", help="save the API URL and a token (0600 config file)")
    login.add_argument("--token", default=None, help="API token [env FACTORY_API_TOKEN; else prompted]")
    # `factoryctl login --url URL --token T` reads naturally; the global --url works as well.
    login.add_argument("--url", default=argparse.SUPPRESS, help="API base URL to log in to")

    keys = res.add_parser("keys", help="signing keys").add_subparsers(dest="action", required=True)
    gen_help = "write an Ed25519 key pair: the private key to OUT (0600), the public one beside it"
    gen = keys.add_parser("generate", help=gen_help, description=gen_help)
    gen.add_argument(
        "--out",
        type=Path,
        required=True,
        help="private key file, e.g. me.pem (.pem is added when OUT has no suffix); "
        "the public key goes to me.pub.pem, the file gateways pin",
    )

    models = res.add_parser("models", help="the model registry").add_subparsers(dest="action", required=True)
    push = models.add_parser("push", help="sign and upload a model version (resumable)")
    push.add_argument("artifact", type=Path, help="the ONNX file")
    push.add_argument("--manifest", type=Path, required=True, help="its manifest JSON")
    push.add_argument("--key", type=Path, default=None, help="Ed25519 private key [env FACTORY_SIGNING_KEY]")
    push.add_argument("--card", type=Path, default=None, help="model card, Markdown")
    push.add_argument(
        "--card-unfilled",
        action="store_true",
        help="push a card that still has lines marked '(to fill in)' (a version's card cannot change later)",
    )
    push.add_argument("--fill", action="store_true", help="fill artifact/sha256/size/file hashes from disk")
    models.add_parser("list", help="list models").add_argument("--search", default=None, help="name contains")
    show = models.add_parser("show", help="one model's versions, or one version in full")
    show.add_argument("name")
    show.add_argument("version", nargs="?")

    rollouts = res.add_parser("rollouts", help="staged rollouts").add_subparsers(dest="action", required=True)
    create = rollouts.add_parser("create", help="roll a version out in waves")
    create.add_argument("--model", required=True, help="registered model name")
    create.add_argument("--version", required=True, help="registered version to roll out")
    create.add_argument(
        "--slot",
        default=None,
        help="gateway model slot to update; left out: the slot where the targeted gateways run a "
        "model of this name, else the one slot running a model of its task",
    )
    create.add_argument("--gateway", action="append", default=[], help="a gateway id (repeatable)")
    create.add_argument("--tag", action="append", default=[], help="gateways with this tag (repeatable)")
    create.add_argument("--line", default=None, help="gateways of this line")
    create.add_argument("--site", default=None, help="gateways of this site")
    create.add_argument(
        "--cpu-class",
        action="append",
        default=[],
        metavar="CLASS",
        help="gateways whose birth reports this CPU class, exactly (repeatable; 'devices show' "
        f"says a gateway's): {', '.join(CPU_CLASSES)}",
    )
    create.add_argument(
        "--waves",
        default="1,10%,50%,100%",
        help="cumulative wave sizes, counts or percentages of the target (default: %(default)s)",
    )
    # Defaults are the API's (cloud.ota.schemas): units are said here because fractions and
    # percentages are easy to confuse (0.05 is 5%, 5 is refused).
    create.add_argument(
        "--bake",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="seconds each wave must stay healthy (default: %(default)g s)",
    )
    create.add_argument(
        "--max-failure-ratio",
        type=float,
        metavar="FRACTION",
        default=0.0,
        help="largest fraction (0-1) of a wave's gateways that may fail or be unhealthy; "
        "0.1 = 10%% (default: %(default)g, none may fail)",
    )
    create.add_argument(
        "--max-error-rate",
        type=float,
        metavar="FRACTION",
        default=0.05,
        help="largest errors/inferences of the new model, a fraction (0-1): 0.05 = 5%% (default: %(default)g)",
    )
    create.add_argument(
        "--max-p95-ms",
        type=float,
        metavar="MS",
        default=None,
        help="largest p95 inference latency in milliseconds, e.g. 40 (default: no limit)",
    )
    create.add_argument(
        "--max-defect-rate-shift",
        type=_fraction_or_off,
        metavar="FRACTION",
        default=0.01,
        help="largest change of the defect rate versus before the update, either way, a fraction "
        "(0-1): 0.01 = 1 percentage point, judged only beyond sampling noise; 'off': no limit "
        "(default: %(default)g)",
    )
    create.add_argument(
        "--min-defect-rate-parts",
        type=int,
        metavar="N",
        default=5000,
        help="parts each side of the update must have seen before the defect-rate shift is judged; "
        "a gateway waits (pending) until the new model has (default: %(default)s)",
    )
    create.add_argument(
        "--install-timeout",
        type=float,
        metavar="SECONDS",
        default=600.0,
        help="seconds a gateway may take to install before it counts as failed (default: %(default)g s)",
    )
    add_gate_arguments(create)
    rollouts.add_parser("list", help="list rollouts")
    status = rollouts.add_parser("status", help="a rollout's waves, gateways and events")
    status.add_argument("id")
    status.add_argument("--watch", action="store_true", help="refresh until it completes or aborts")
    status.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    for action in ("pause", "resume", "abort"):
        sub = rollouts.add_parser(action, help=f"{action} a rollout")
        sub.add_argument("id")
        sub.add_argument("--reason", default="")

    for name in ("devices", "gateways"):
        dev = res.add_parser(name, help="edge gateways").add_subparsers(dest="action", required=True)
        dev.add_parser("list", help="list gateways")
        dev_show = dev.add_parser("show", help="one gateway with its OTA state and history")
        dev_show.add_argument("id")
        dev_set = dev.add_parser(
            "set", help="set a gateway's line, site or tags (admin; the line is the cloud's record)"
        )
        dev_set.add_argument("id")
        dev_set.add_argument("--line", default=None, help="the line it is on: its results are stored there")
        dev_set.add_argument("--site", default=None, help="the site (plant) it is in")
        dev_set.add_argument(
            "--tag", action="append", default=None, help="a tag rollouts can target (repeat)"
        )

    results = res.add_parser("results", help="inference results").add_subparsers(dest="action", required=True)
    res_list = results.add_parser("list", help="list results, newest first")
    res_list.add_argument("--line", help="only this line")
    res_list.add_argument("--gateway", help="only this gateway")
    res_list.add_argument("--limit", type=int, default=20, help="how many (1-1000)")
    add_export_parser(res)
    add_capture_parsers(res)
    add_notes_parser(res)
    add_runs_parser(res)
    add_shadow_parser(res)
    return parser


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
) -> int:
    """Entry point of ``factoryctl``; ``client`` lets tests pass an in-process one."""
    try:
        return _main(argv, environ, client)
    except BrokenPipeError:
        # `factoryctl ... | head`: the reader is gone. Stop quietly, as Unix tools do; point
        # stdout at /dev/null so the interpreter's final flush does not complain either.
        with contextlib.suppress(OSError, ValueError):  # ValueError: a stdout without a file
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE


def _main(argv: Sequence[str] | None, environ: Mapping[str, str] | None, client: httpx.Client | None) -> int:
    env = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    try:
        path = config_path(env)
        config = load_config(path)
        url = args.url or env.get("FACTORY_API_URL") or config.url
        token = env.get("FACTORY_API_TOKEN") or config.token
        headers = {"Authorization": f"Bearer {token}"} if token and args.resource != "login" else {}
        ctx = Context(args=args, env=env, config_path=path, url=url, out=sys.stdout, err=sys.stderr)
        if client is not None:
            client.headers.update(headers)
            return run(ctx, client)
        with httpx.Client(base_url=url, timeout=args.timeout, headers=headers) as http:
            return run(ctx, http)
    except CtlError as exc:
        print(f"factoryctl: {exc}", file=sys.stderr)  # noqa: T201
        return exc.code
    except httpx.TransportError as exc:  # any call path: refused, timed out, cut mid-upload
        message = f"factoryctl: cannot reach the API at {url}: {exc} (is it running? check --url)"
        print(message, file=sys.stderr)  # noqa: T201
        return 1
    except ValueError as exc:  # a bad config file
        print(f"factoryctl: {exc}", file=sys.stderr)  # noqa: T201
        return EXIT_AUTH
