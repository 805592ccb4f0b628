"""``factory-sim demo``: the whole platform on one machine, on embedded defaults.

Starts, each as its own process: an embedded MQTT broker (unless ``--broker`` names one), the
cloud API with SQLite (unless ``--db``), one ingest worker, and N virtual gateways (camera
simulator + real ``edge-agent``). Prints what runs where, then a status line now and then.
Ctrl-C stops everything in reverse order.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from protocol.signing import generate_private_key, private_key_pem, public_key_pem
from protocol.topics import TOPIC_ROOT
from simulators.demo_alerts import api_caller, seed_alert_rules
from simulators.demo_banner import DEMO_PASSWORD, DEMO_USERS, banner
from simulators.demo_looks import DemoLooks, LookChange, add_look_change_arguments, look_change_from_args
from simulators.demo_registry import RegistryError, push_bundled
from simulators.demo_status import StatusLine
from simulators.fleet import FleetConfig, add_fleet, gateway_ids, token_path
from simulators.net import console_script, free_port, port_is_free
from simulators.supervisor import Service, Supervisor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs; every field has a flag."""

    workdir: Path
    broker_url: str | None
    db_url: str | None
    gateways: int
    api_port: int
    fps: float
    status_every_s: float
    run_for_s: float | None
    topic_root: str = TOPIC_ROOT  # another root keeps two plants (or test runs) apart on one broker
    look_change: LookChange | None = None  # --change-look-after: a line's look changed by the demo


class DemoError(RuntimeError):
    """The demo could not start; the message says which piece and where its log is."""


def _wait_http(url: str, timeout_s: float, service: Service) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        proc = service.process
        if proc is not None and proc.poll() is not None:
            raise DemoError(f"{service.name} exited with code {proc.returncode}; see {service.log_path}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own local URL
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise DemoError(f"{service.name} did not answer {url} within {timeout_s:.0f}s; see {service.log_path}")


def _start_cloud(
    supervisor: Supervisor, config: DemoConfig, public_key: Path, desired_key: Path, control_url: str
) -> tuple[str, str, str]:
    """Start broker (if embedded), migrate, API, ingest and the Celery worker; return (broker URL,
    API URL, admin token). The registry knows the key the gateways trust, so a version signed by
    another key is flagged at push (factoryctl's warning, the Models page) before any rollout.
    The console offers admins the demo's look switch through ``control_url``."""
    cloud = console_script("factory-cloud")
    logs = config.workdir / "logs"
    broker_url = config.broker_url
    share_group = "ingest"
    if broker_url is None:
        port = 1883 if port_is_free(1883) else free_port()
        broker_url = f"mqtt://127.0.0.1:{port}"
        # amqtt does not deliver $share subscriptions: one ingest worker, plain subscription.
        share_group = ""
        supervisor.add(Service("broker", [cloud, "broker", "--port", str(port)], logs / "broker.log"))
    db_url = config.db_url or f"sqlite:///{(config.workdir / 'cloud.db').resolve()}"
    common = ["--db", db_url, "--broker", broker_url, "--topic-root", config.topic_root]
    migrate = subprocess.run(  # noqa: S603 - our own console script
        [cloud, "migrate", "--db", db_url], capture_output=True, text=True, check=False
    )
    if migrate.returncode != 0:
        raise DemoError(f"database migration failed for {db_url}:\n{migrate.stderr.strip()}")
    # Writes (models push, rollouts) need a token in every profile; the demo prints an admin one.
    minted = subprocess.run(  # noqa: S603 - our own console script
        [cloud, "tokens", "create", "--role", "admin", "--name", "demo", "--db", db_url],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if minted.returncode != 0:
        raise DemoError(f"could not create the demo admin token:\n{minted.stderr.strip()}")
    admin_token = minted.stdout.strip().splitlines()[-1]
    # Console users, one per role, with the fixed demo passwords the banner prints (demo profile only).
    for user, role in DEMO_USERS.items():
        made = subprocess.run(  # noqa: S603 - our own console script
            [cloud, "users", "create", user, "--role", role, "--db", db_url],
            capture_output=True, text=True, check=False,
            env={**os.environ, "FACTORY_NEW_PASSWORD": DEMO_PASSWORD},
        )  # fmt: skip
        if made.returncode != 0 and "exists" not in made.stderr:
            raise DemoError(f"could not create the demo user {user}:\n{made.stderr.strip()}")
    api_url = f"http://127.0.0.1:{config.api_port}"
    # API and worker agree on where artifacts live and the URL gateways download them from.
    common += ["--artifact-dir", str((config.workdir / "artifacts").resolve()), "--public-url", api_url]
    common += ["--desired-signing-key", str(desired_key.resolve())]  # API and worker sign desired states
    if not port_is_free(config.api_port):
        raise DemoError(f"port {config.api_port} is taken; pass --api-port to use another")
    trusted = {"FACTORY_TRUSTED_KEYS": str(public_key.resolve())}
    # Rollout ticks: a real Celery worker + beat on kombu's filesystem transport (no Redis needed);
    # the API sends the console's teach runs to that same queue.
    queue_dir = str((config.workdir / "celery-queue").resolve())
    celery = ["--celery-broker-url", "filesystem://", "--celery-queue-dir", queue_dir]
    api = supervisor.add(
        Service(
            "api",
            [
                cloud,
                "api",
                *common,
                *celery,
                "--port",
                str(config.api_port),
                "--demo-control-url",
                control_url,
            ],
            logs / "api.log",
            env=trusted,
            tier=1,
        )
    )
    supervisor.add(
        Service(
            "ingest", [cloud, "ingest", *common, "--share-group", share_group], logs / "ingest.log", tier=1
        )
    )
    # Two worker processes: a teach run occupies one for minutes, the ticks and alerts keep the other.
    worker_argv = [cloud, "worker", "--beat", "--concurrency", "2", *common, *celery]
    supervisor.add(Service("worker", worker_argv, logs / "worker.log", tier=1))
    _wait_http(f"{api_url}/healthz", 60, api)
    return broker_url, api_url, admin_token


def _gateway_tokens(fleet: FleetConfig, db_url: str) -> None:
    """A token per gateway, bound to it, in the file its config names (mode 0600): with it a
    gateway uploads its captures and nothing else. Minted afresh at every start, all at once (each
    is a process start of its own)."""
    cloud = console_script("factory-cloud")
    minting = {
        gateway_id: subprocess.Popen(  # noqa: S603 - our own console script
            [cloud, "tokens", "create", "--role", "gateway", "--gateway", gateway_id, "--db", db_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for gateway_id in gateway_ids(fleet)
    }
    for gateway_id, process in minting.items():
        out, err = process.communicate()
        if process.returncode != 0:
            raise DemoError(f"could not create the token of gateway {gateway_id}:\n{err.strip()}")
        path = token_path(fleet, gateway_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(out.strip().splitlines()[-1] + "\n")
        path.chmod(0o600)  # a file left by an earlier run keeps its mode through O_TRUNC


def _demo_key(folder: Path, name: str) -> tuple[Path, Path]:
    """An Ed25519 key pair, made once; gateways pin the public half. ``demo-signing``: the demo
    engineer's model key; ``desired-signing``: the cloud's desired-state key."""
    private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    if not private.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key = generate_private_key()
        private.write_bytes(private_key_pem(key))
        private.chmod(0o600)
        public.write_bytes(public_key_pem(key.public_key()))
    return private, public


def run_demo(config: DemoConfig) -> int:
    """Run the demo until Ctrl-C/SIGTERM (or ``run_for_s``); return the exit code."""
    config.workdir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor()
    looks = DemoLooks(config.workdir, config.look_change)
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        signing_key, public_key = _demo_key(config.workdir / "keys", "demo-signing")
        desired_key, desired_public = _demo_key(config.workdir / "keys", "desired-signing")
        looks.start()
        broker_url, api_url, admin_token = _start_cloud(
            supervisor, config, public_key, desired_key, looks.url
        )
        fleet = FleetConfig(
            count=config.gateways,
            broker_url=broker_url,
            workdir=config.workdir / "gateways",
            fps=config.fps,
            trusted_keys=(public_key,),
            desired_keys=(desired_public,),
            topic_root=config.topic_root,
            # One of each: few-shot anomaly model + maintenance notes, supervised CNN, parcel line.
            kinds=("anomaly", "inspection", "parcels"),
            api_url=api_url,  # captures: each gateway uploads with a token of its own
        )
        _gateway_tokens(fleet, config.db_url or f"sqlite:///{(config.workdir / 'cloud.db').resolve()}")
        gateways = add_fleet(supervisor, fleet)
        looks.add_gateways(gateways)
        supervisor.start()
        try:  # while the gateways start: the console's Models page shows what they run
            log.info(
                "registered the bundled models: %s",
                ", ".join(push_bundled(api_url, admin_token, signing_key)),
            )
        except (RegistryError, OSError, subprocess.TimeoutExpired) as exc:
            log.error("%s (the demo runs on; `factoryctl models push` registers them by hand)", exc)
        try:  # the Alerts page shows a rule per line from the first visit
            made = seed_alert_rules(api_caller(api_url, admin_token), gateways)
            log.info("alert rules created: %s", ", ".join(made) or "none (every line has its rule)")
        except (OSError, ValueError) as exc:
            log.error("could not create the demo's alert rules: %s (the demo runs on)", exc)
        db_shown = config.db_url or f"sqlite:///{(config.workdir / 'cloud.db').resolve()}"
        change = config.look_change.describe() if config.look_change else None
        sys.stdout.write(
            banner(broker_url, api_url, db_shown, gateways, config.workdir, admin_token, looks.url, change)
            + "\n"
        )
        sys.stdout.flush()
        started = time.monotonic()
        status = StatusLine(config.workdir / "logs" / "ingest.log")
        next_status = started + min(10.0, config.status_every_s)
        while not stopping:
            time.sleep(0.3)
            now = time.monotonic()
            if config.run_for_s is not None and now - started >= config.run_for_s:
                break
            looks.tick(now - started)
            if now >= next_status:
                log.info("%s%s", status.poll(api_url, now), looks.note())
                next_status = now + config.status_every_s
    except DemoError as exc:
        log.error("%s", exc)
        return 1
    finally:
        sys.stdout.write("stopping...\n")
        supervisor.stop()
        looks.stop()
    return 0


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``factory-sim demo``."""
    parser.add_argument(
        "--broker", help="MQTT broker mqtt://HOST:PORT instead of the embedded one [env FACTORY_BROKER_URL]"
    )
    parser.add_argument(
        "--db", help="database URL (postgresql+psycopg://...) instead of SQLite [env FACTORY_DB_URL]"
    )
    parser.add_argument("--gateways", type=int, default=3, help="how many virtual gateways")
    parser.add_argument("--api-port", type=int, default=8000, help="port of the API / console")
    parser.add_argument("--fps", type=float, default=2.0, help="frames per second per camera")
    parser.add_argument("--workdir", type=Path, default=Path("var/demo"), help="databases, configs and logs")
    parser.add_argument("--status-every", type=float, default=15.0, help="seconds between status lines")
    parser.add_argument(
        "--run-for", type=float, help="stop by itself after this many seconds (default: run until Ctrl-C)"
    )
    parser.add_argument(
        "--topic-root",
        help=f"MQTT topic root of cloud and gateways [env FACTORY_TOPIC_ROOT; default {TOPIC_ROOT}]",
    )
    add_look_change_arguments(parser)


def run_demo_from_args(args: argparse.Namespace) -> int:
    """``factory-sim demo``."""
    look_change = look_change_from_args(args)
    if look_change is not None:  # refused before anything starts; gateways take the lines in turn
        look_change.check_lines(list(FleetConfig.lines[: args.gateways]))
    return run_demo(
        DemoConfig(
            workdir=args.workdir,
            broker_url=args.broker or os.environ.get("FACTORY_BROKER_URL") or None,
            db_url=args.db or os.environ.get("FACTORY_DB_URL") or None,
            gateways=args.gateways,
            api_port=args.api_port,
            fps=args.fps,
            status_every_s=args.status_every,
            run_for_s=args.run_for,
            topic_root=args.topic_root or os.environ.get("FACTORY_TOPIC_ROOT") or TOPIC_ROOT,
            look_change=look_change,
        )
    )
