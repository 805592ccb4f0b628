"""``factory-cloud``: run the API, the ingest worker, the Celery worker, or migrate the database.

Settings come from flags, then ``FACTORY_<FIELD>`` environment variables (e.g. FACTORY_DB_URL,
FACTORY_BROKER_URL, FACTORY_BROKER_PASSWORD), then defaults, mapped by
``cloud.config.settings_from_environment``.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from cloud.config import LIST_FIELDS, CloudSettings, env_name, settings_from_environment

log = logging.getLogger("cloud.cli")
# Short spellings of the most used flags, beside the generated --field-name ones.
ALIASES = {"db_url": ["--db"], "broker_url": ["--broker"], "api_host": ["--host"], "api_port": ["--port"]}
# Secrets are accepted from the environment only: a flag would show in `ps` and shell history.
ENV_ONLY = {"broker_password"}


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (flag > FACTORY_<NAME> environment variable > default)")
    for field, info in CloudSettings.model_fields.items():
        if field in ENV_ONLY or field in LIST_FIELDS:
            continue
        names = [*ALIASES.get(field, []), "--" + field.replace("_", "-")]
        help_text = f"{info.description} [env {env_name(field)}; default {info.default!r}]"
        group.add_argument(
            *names, dest=field, default=None, metavar=field.split("_")[-1].upper(), help=help_text
        )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="factory-cloud", description=__doc__.split("\n")[0] if __doc__ else None
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING... [env FACTORY_LOG_LEVEL]")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("api", "serve the HTTP API (uvicorn)"),
        ("ingest", "run an MQTT ingest worker"),
        ("worker", "run a Celery worker"),
        ("migrate", "apply database migrations and exit"),
    ):
        sub = commands.add_parser(name, help=help_text)
        _add_settings_flags(sub)
        if name == "worker":
            sub.add_argument(
                "--beat", action="store_true", help="also run the periodic scheduler (one worker only)"
            )
            sub.add_argument("--concurrency", type=int, default=1, help="worker processes")
        if name == "api":
            sub.add_argument(
                "--demo-on-network",
                action="store_true",
                help="let the demo profile listen on an address other machines reach (its reads need "
                "no token and its accounts are published: never on a plant network)",
            )
    users = commands.add_parser("users", help="manage users").add_subparsers(dest="action", required=True)
    user_create = users.add_parser(
        "create", help="create a user (password from FACTORY_NEW_PASSWORD or a prompt)"
    )
    _add_settings_flags(user_create)
    user_create.add_argument("username")
    user_create.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
    user_disable = users.add_parser("disable", help="disable a user and revoke every token of theirs")
    _add_settings_flags(user_disable)
    user_disable.add_argument("username")
    tokens = commands.add_parser("tokens", help="manage API tokens").add_subparsers(
        dest="action", required=True
    )
    token_create = tokens.add_parser("create", help="mint an API token and print it once")
    _add_settings_flags(token_create)
    token_create.add_argument(
        "--role",
        required=True,
        choices=["viewer", "operator", "admin", "gateway"],
        help="gateway: a gateway's own token, which may only upload its captures (needs --gateway)",
    )
    token_create.add_argument("--name", default=None, help="what the token is for (shown in the audit log)")
    token_create.add_argument("--gateway", default=None, help="the gateway id a gateway token is bound to")
    token_create.add_argument(
        "--expires",
        default=None,
        metavar="LIFETIME",
        help="how long the token works: 30m, 12h, 30d, 8w (at most 366d) [default 90d]",
    )
    desired_key = commands.add_parser(
        "desired-key",
        help="print the id of the key desired states are signed with (made on first use) and write "
        "its public half for gateways to pin (ota.desired_keys)",
    )
    _add_settings_flags(desired_key)
    desired_key.add_argument(
        "--public-out",
        type=Path,
        default=None,
        help="where to write the public PEM [default: beside the key, .pub]",
    )
    broker = commands.add_parser("broker", help="run the embedded MQTT broker (demo profile: insecure)")
    broker.add_argument("--host", default="127.0.0.1", help="address to listen on")
    broker.add_argument("--port", type=int, default=1883, help="TCP port (0 = any free port)")
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point of ``factory-cloud``; returns the exit code."""
    env = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=(args.log_level or env.get("FACTORY_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # one line per plugin at INFO
    if args.command == "broker":
        return _run_broker(args.host, args.port)
    flags = {f: getattr(args, f, None) for f in CloudSettings.model_fields}
    try:
        settings = settings_from_environment(env, flags)
    except ValidationError as exc:
        print(f"factory-cloud: invalid settings:\n{exc}", file=sys.stderr)  # noqa: T201
        return 2
    try:
        if args.command == "migrate":
            from cloud.db.migrate import migrate

            migrate(settings.db_url, wait_s=settings.db_wait_s)
            return 0
        if args.command == "desired-key":
            return _desired_key(settings, args.public_out)
        if args.command in ("users", "tokens"):
            from cloud.access_cli import run_access_command

            return run_access_command(args, settings, env)
        if args.command == "api":
            refusal = _demo_exposure(settings, args.demo_on_network)
            if refusal:
                print(f"factory-cloud: {refusal}", file=sys.stderr)  # noqa: T201
                return 2
            return _run_api(settings)
        if args.command == "ingest":
            return _run_ingest(settings)
        return _run_worker(settings, args.beat, args.concurrency)
    except RuntimeError as exc:  # start-up failures (database unreachable...) carry a clear message
        log.error("%s", exc)  # the message says it all; no traceback for operators
        return 1


def _desired_key(settings: CloudSettings, out: Path | None) -> int:
    from cloud.ota.desired_key import desired_key, key_path, public_key_file
    from protocol.signing import SignatureError, key_id

    try:
        public = public_key_file(settings, out)
        ident = key_id(desired_key(settings).public_key())
    except (OSError, SignatureError) as exc:
        print(f"factory-cloud: desired-state key {key_path(settings)}: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    print(f"desired-state key {key_path(settings)} (key id {ident}); public key: {public}")  # noqa: T201
    return 0


def _demo_exposure(settings: CloudSettings, allowed: bool) -> str | None:
    """Why the API must not listen where it was told to, or None: the demo profile stays on the
    machine's loopback unless ``--demo-on-network`` says otherwise."""
    host = settings.api_host
    if settings.profile != "demo" or allowed or host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass  # a host name: it may resolve to any address, so it counts as the network
    return (
        f"refusing to serve the demo profile on {host}, which other machines reach: its reads need no "
        "token and its demo accounts and password are published. Listen on 127.0.0.1, run the "
        "production profile (--profile production), or pass --demo-on-network to accept the risk"
    )


def _run_api(settings: CloudSettings) -> int:
    import uvicorn

    from cloud.api import create_app

    # uvicorn installs its own SIGINT/SIGTERM handlers and drains requests before exiting.
    # Open console streams (SSE) would hold a graceful shutdown forever: give them 5 s.
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        timeout_graceful_shutdown=5,
    )
    return 0


def _stop_on_signals(what: str) -> threading.Event:
    """An event set by SIGINT or SIGTERM, which the command's main loop waits on."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; stopping %s", signal.Signals(signum).name, what)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop


def _run_ingest(settings: CloudSettings) -> int:
    from cloud.ingest.worker import IngestWorker

    stop = _stop_on_signals("ingest")
    worker = IngestWorker(settings).start()
    try:
        while not stop.wait(0.5):
            if worker.fatal_error or not worker.alive:
                break
    finally:
        worker.stop()
    if worker.fatal_error:
        log.error("ingest stopped: %s", worker.fatal_error)
        return 1
    return 0


def _run_broker(host: str, port: int) -> int:
    from cloud.embedded_broker import EmbeddedBroker

    # amqtt logs every session transition at INFO; keep the demo's terminal readable.
    for noisy in ("transitions", "amqtt"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stop = _stop_on_signals("the broker")
    broker = EmbeddedBroker(host, port)
    broker.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        broker.stop()
    return 0


def _run_worker(settings: CloudSettings, beat: bool, concurrency: int) -> int:
    from cloud.celery_app import create_celery

    app = create_celery(settings)
    argv = ["worker", "--loglevel=INFO", f"--concurrency={concurrency}"]
    if beat:
        argv.append("--beat")
    try:
        app.worker_main(argv)  # Celery handles SIGINT/SIGTERM (warm shutdown)
    finally:
        app.dispose_engines()
    return 0
