"""Virtual gateways: each one a simulated camera line serving MJPEG plus a real ``edge-agent``.

Both run as separate processes under the supervisor, exactly as a gateway and its camera would,
so the demo and the tests exercise the real agent daemon and its real MQTT, outbox and camera code.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from protocol.topics import TOPIC_ROOT, validate_gateway_id
from simulators.net import console_script, free_port, stop_on_signals
from simulators.parcel_line import ParcelLineConfig
from simulators.supervisor import Service, Supervisor

log = logging.getLogger(__name__)

DEFAULT_MANIFEST = "defect/artifacts/defect-cnn-1.0.0.manifest.json"
# What each kind of virtual gateway runs: its line simulator and the bundled models it loads.
BUNDLED = {
    "defect-cnn": DEFAULT_MANIFEST,
    "anomaly": "anomaly/artifacts/defect-patchcore-1.1.0.manifest.json",
    "parcels": "parcels/artifacts/parcel-detector-1.1.0.manifest.json",
    "notes": "notes/artifacts/notes-minilm-1.1.0.manifest.json",
}
KINDS = ("inspection", "anomaly", "parcels")
# The parcel line's sort table, written into its gateway's config (a line's fact, kept across model
# updates). The simulated labels start with the lane digit (Code 128, EAN-13) or "PX<lane>-" (QR).
PARCEL_ROUTES: dict[str, Any] = {
    "default": "manual",
    "rules": [
        {"lane": "reject", "damaged": True},
        {"lane": "manual", "has_barcode": False},
        {"lane": "oversize", "min_length_mm": 480.0},
        *({"lane": f"lane_{n}", "prefixes": [str(n), f"PX{n}"]} for n in (1, 2, 3)),
    ],
}


def bundled_manifest(model: str = "defect-cnn") -> Path:
    """A bundled model's manifest inside the installed ``domain_models`` package."""
    return Path(str(resources.files("domain_models").joinpath(BUNDLED[model])))


@dataclass(frozen=True)
class FleetConfig:
    """How many virtual gateways, where they report, and how their lines behave."""

    count: int
    broker_url: str
    workdir: Path
    topic_root: str = TOPIC_ROOT
    lines: tuple[str, ...] = ("line-1", "line-2", "line-3")
    gateway_prefix: str = "gw"
    fps: float = 2.0
    defect_rate: float = 0.15
    base_seed: int = 100
    telemetry_interval_s: float = 5.0
    manifest: Path | None = None
    first: int = 1
    username_from_id: bool = False
    password_env: str | None = None
    ca_file: Path | None = None
    trusted_keys: tuple[Path, ...] = ()  # non-empty: gateways follow signed OTA updates
    desired_keys: tuple[Path, ...] = ()  # the cloud's desired-state key(s), needed with trusted_keys
    # Gateway kinds in turn: "inspection" (camera + --manifest or the supervised defect CNN),
    # "anomaly" (camera + few-shot anomaly model + maintenance notes), "parcels" (parcel line).
    kinds: tuple[str, ...] = ("inspection",)
    # The cloud API the gateways upload captures to, each with the token in its API_TOKEN_FILE
    # (None: captures off). The demo mints those tokens before the agents start.
    api_url: str | None = None

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"--count must be at least 1, got {self.count}")
        if not self.lines:
            raise ValueError("at least one line name is needed")
        if self.fps <= 0:
            raise ValueError(f"--fps must be positive, got {self.fps}")
        if self.first < 1:
            raise ValueError(f"--first must be at least 1, got {self.first}")
        if not 0.0 <= self.defect_rate <= 1.0:
            raise ValueError(f"--defect-rate must be within 0..1, got {self.defect_rate}")
        if self.trusted_keys and not self.desired_keys:
            raise ValueError(
                "--trusted-key needs --desired-key too: gateways act only on signed desired states"
            )
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown or not self.kinds:
            raise ValueError(f"--kind must be one of {', '.join(KINDS)}; got {unknown or 'none'}")


API_TOKEN_FILE = "api-token"  # noqa: S105 - a file name, not a secret


def gateway_ids(fleet: FleetConfig) -> list[str]:
    """The ids of the fleet's gateways, in the order :func:`add_fleet` starts them."""
    first = fleet.first - 1
    return [validate_gateway_id(f"{fleet.gateway_prefix}-{i + 1}") for i in range(first, first + fleet.count)]


def token_path(fleet: FleetConfig, gateway_id: str) -> Path:
    """Where a virtual gateway reads its API token (for capture uploads)."""
    return fleet.workdir / gateway_id / API_TOKEN_FILE


@dataclass(frozen=True)
class VirtualGateway:
    """Where one virtual gateway's pieces live."""

    gateway_id: str
    line: str
    kind: str
    camera_port: int
    http_port: int
    config_path: Path


def gateway_config(fleet: FleetConfig, gateway: VirtualGateway) -> dict[str, Any]:
    """The agent YAML (as a dict) for one virtual gateway."""
    home = fleet.workdir / gateway.gateway_id
    mqtt: dict[str, Any] = {"url": fleet.broker_url}
    if fleet.topic_root != TOPIC_ROOT:
        # Two fleets on one broker under their own topic roots (two demos, a demo beside a test)
        # must not share MQTT client ids: the broker would hand each gw-1 session to the other
        # every few seconds, and each takeover fires the other's last will.
        root_id = hashlib.sha256(fleet.topic_root.encode()).hexdigest()[:8]
        mqtt["client_id"] = f"{gateway.gateway_id}-{root_id}"
    if fleet.username_from_id:
        mqtt["username"] = gateway.gateway_id  # the broker ACL confines each gateway by its user name
    if fleet.password_env:
        mqtt["password_env"] = fleet.password_env
    if fleet.ca_file:
        mqtt["tls"] = {"ca_file": str(fleet.ca_file)}
    camera_url = f"http://127.0.0.1:{gateway.camera_port}/stream.mjpg"
    if gateway.kind == "parcels":
        # Tracking needs every frame of a parcel's passage: take the stream at its own rate.
        sources: list[dict[str, Any]] = [
            {"type": "camera", "name": "cam1", "url": camera_url, "fps_limit": 8}
        ]
        models = [
            {
                "slot": "parcels",
                "manifest": _manifest_path(fleet, "parcels"),
                "sources": ["cam1"],
                "parcels": _parcel_line(fleet),
            }
        ]
    else:
        sources = [{"type": "camera", "name": "cam1", "url": camera_url, "fps_limit": fleet.fps}]
        model = "anomaly" if gateway.kind == "anomaly" else "defect-cnn"
        models = [{"slot": "defect", "manifest": _manifest_path(fleet, model), "sources": ["cam1"]}]
        if gateway.kind == "anomaly":
            notes = home / "notes"
            notes.mkdir(parents=True, exist_ok=True)
            sources.append({"type": "notes", "name": "notes", "path": str(notes.resolve()), "watch": True})
            models.append({"slot": "notes", "manifest": _manifest_path(fleet, "notes"), "sources": ["notes"]})
    config: dict[str, Any] = {
        "gateway_id": gateway.gateway_id,
        "line": gateway.line,
        "station": "inspect-1",
        "topic_root": fleet.topic_root,
        "state_dir": str((home / "state").resolve()),
        "mqtt": mqtt,
        "sources": sources,
        "models": models,
        "runtime": {"threads": 1, "max_batch": 4, "max_wait_ms": 20},
        "outbox": {"batch_items": 100, "resend_after_s": 10},
        "http": {"host": "127.0.0.1", "port": gateway.http_port},
        "telemetry_interval_s": fleet.telemetry_interval_s,
        "ota": _ota_block(fleet),
    }
    if fleet.api_url is not None:
        token = token_path(fleet, gateway.gateway_id).resolve()
        config["captures"] = {"enabled": True, "api_url": fleet.api_url, "token_file": str(token)}
    return config


def _parcel_line(fleet: FleetConfig) -> dict[str, Any]:
    """The parcel line's calibration and sort table: what its simulated camera renders."""
    # `factory-sim parcels` renders with ParcelLineConfig's defaults; the calibration is not seeded.
    camera = ParcelLineConfig(seed=fleet.base_seed)
    return {"mm_per_px": camera.mm_per_px, "count_line_x": 0.5, "routes": PARCEL_ROUTES}


def _manifest_path(fleet: FleetConfig, model: str) -> str:
    chosen = (
        fleet.manifest if (fleet.manifest is not None and model == "defect-cnn") else bundled_manifest(model)
    )
    return str(chosen.resolve())


def _ota_block(fleet: FleetConfig) -> dict[str, Any]:
    if not fleet.trusted_keys:
        return {"enabled": False}
    # Short health window so a demo rollout moves through its waves in about a minute.
    return {
        "enabled": True,
        "trusted_keys": [str(k.resolve()) for k in fleet.trusted_keys],
        "desired_keys": [str(k.resolve()) for k in fleet.desired_keys],
        "health_window_s": 20,
        "health_window_inferences": 30,
        "min_window_inferences": 30,
        "report_interval_s": 10,
    }


def add_fleet(supervisor: Supervisor, fleet: FleetConfig) -> list[VirtualGateway]:
    """Write each gateway's config and start its line simulator(s) and agent under ``supervisor``."""
    sim = console_script("factory-sim")
    agent = console_script("edge-agent")
    gateways = []
    for index, gateway_id in enumerate(gateway_ids(fleet), start=fleet.first - 1):
        line = fleet.lines[index % len(fleet.lines)]
        kind = fleet.kinds[index % len(fleet.kinds)]
        home = fleet.workdir / gateway_id
        home.mkdir(parents=True, exist_ok=True)
        gateway = VirtualGateway(gateway_id, line, kind, free_port(), free_port(), home / "gateway.yaml")
        gateway.config_path.write_text(yaml.safe_dump(gateway_config(fleet, gateway), sort_keys=False))
        seed = str(fleet.base_seed + index)
        port = str(gateway.camera_port)
        if kind == "parcels":
            camera_argv = [sim, "parcels", "--serve", port, "--seed", seed, "--fps", "8"]
        else:
            camera_argv = [
                sim, "camera", "--serve", port, "--seed", seed,
                "--fps", str(fleet.fps), "--defect-rate", str(fleet.defect_rate),
            ]  # fmt: skip
        supervisor.add(Service(f"{gateway_id}/camera", camera_argv, home / "camera.log", tier=2))
        if kind == "anomaly":
            notes_argv = [sim, "notes", "--out-dir", str(home / "notes"), "--seed", seed, "--rate", "0.2"]
            supervisor.add(Service(f"{gateway_id}/notes", notes_argv, home / "notes.log", tier=2))
        agent_argv = [agent, "--config", str(gateway.config_path)]
        supervisor.add(Service(f"{gateway_id}/agent", agent_argv, home / "agent.log", tier=3))
        gateways.append(gateway)
        log.info(
            "virtual gateway %s (%s) on %s, camera :%d, health :%d",
            gateway_id,
            kind,
            line,
            gateway.camera_port,
            gateway.http_port,
        )
    return gateways


FLEET_HELP = "run N virtual gateways: a simulated camera line + a real edge-agent each"


def add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``factory-sim gateways``."""
    parser.add_argument("--count", type=int, default=3, help="how many virtual gateways")
    parser.add_argument("--first", type=int, default=1, help="number of the first gateway (gw-FIRST)")
    parser.add_argument("--prefix", default="gw", help="gateway id prefix: PREFIX-1, PREFIX-2, ...")
    parser.add_argument(
        "--line", action="append", dest="lines", help="line name (repeat; gateways take them in turn)"
    )
    parser.add_argument(
        "--broker", default="mqtt://127.0.0.1:1883", help="mqtt://host:port or mqtts://host:port"
    )
    parser.add_argument("--topic-root", default=TOPIC_ROOT, help="topic root shared with the cloud")
    parser.add_argument("--workdir", type=Path, default=Path("var/fleet"), help="configs, state and logs")
    parser.add_argument("--fps", type=float, default=2.0, help="frames per second per camera")
    parser.add_argument("--defect-rate", type=float, default=0.15, help="share of defective parts, 0..1")
    parser.add_argument("--manifest", type=Path, help="model manifest (default: the bundled defect model)")
    parser.add_argument(
        "--username-from-id", action="store_true", help="log in to the broker as the gateway id"
    )
    parser.add_argument("--password-env", help="environment variable holding the broker password")
    parser.add_argument("--ca-file", type=Path, help="CA bundle for mqtts://")
    parser.add_argument(
        "--kind",
        action="append",
        dest="kinds",
        choices=KINDS,
        help="gateway kind (repeat; gateways take them in turn): inspection, anomaly, parcels",
    )
    parser.add_argument(
        "--trusted-key",
        type=Path,
        action="append",
        dest="trusted_keys",
        help="PEM Ed25519 public key whose signed models the gateways install over the air (repeat)",
    )
    parser.add_argument(
        "--desired-key",
        type=Path,
        action="append",
        dest="desired_keys",
        help="PEM public key of the cloud's desired-state signer (`factory-cloud desired-key`; repeat "
        "to rotate); needed with --trusted-key",
    )


def fleet_from_args(args: argparse.Namespace) -> FleetConfig:
    """Build the fleet config from parsed ``factory-sim gateways`` flags."""
    return FleetConfig(
        count=args.count,
        first=args.first,
        gateway_prefix=args.prefix,
        lines=tuple(args.lines) if args.lines else FleetConfig.lines,
        broker_url=args.broker,
        topic_root=args.topic_root,
        workdir=args.workdir,
        fps=args.fps,
        defect_rate=args.defect_rate,
        manifest=args.manifest,
        username_from_id=args.username_from_id,
        password_env=args.password_env,
        ca_file=args.ca_file,
        trusted_keys=tuple(args.trusted_keys or ()),
        desired_keys=tuple(args.desired_keys or ()),
        kinds=tuple(args.kinds) if args.kinds else FleetConfig.kinds,
    )


def run_fleet(args: argparse.Namespace) -> int:
    """``factory-sim gateways``: run the fleet until Ctrl-C/SIGTERM."""
    fleet = fleet_from_args(args)
    supervisor = Supervisor()
    stop = stop_on_signals()
    try:
        gateways = add_fleet(supervisor, fleet)
        supervisor.start()
        for gw in gateways:
            sys.stdout.write(
                f"{gw.gateway_id} on {gw.line}: camera http://127.0.0.1:{gw.camera_port}/stream.mjpg, "
                f"health http://127.0.0.1:{gw.http_port}/healthz, config {gw.config_path}\n"
            )
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        supervisor.stop()
    return 0
