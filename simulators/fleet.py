"""Virtual gateways: each one a simulated camera line serving MJPEG plus a real ``edge-agent``.

Both run as separate processes under the supervisor, exactly as a gateway and its camera would,
so the demo and the tests exercise the real agent daemon and its real MQTT, outbox and camera code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from protocol.topics import TOPIC_ROOT, validate_gateway_id
from simulators.net import console_script, free_port
from simulators.supervisor import Service, Supervisor

log = logging.getLogger(__name__)

DEFAULT_MANIFEST = "defect/artifacts/defect-cnn-1.0.0.manifest.json"


def bundled_manifest() -> Path:
    """The bundled defect model's manifest inside the installed ``domain_models`` package."""
    return Path(str(resources.files("domain_models").joinpath(DEFAULT_MANIFEST)))


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

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"--count must be at least 1, got {self.count}")
        if not self.lines:
            raise ValueError("at least one line name is needed")
        if self.fps <= 0:
            raise ValueError(f"--fps must be positive, got {self.fps}")
        if not 0.0 <= self.defect_rate <= 1.0:
            raise ValueError(f"--defect-rate must be within 0..1, got {self.defect_rate}")


@dataclass(frozen=True)
class VirtualGateway:
    """Where one virtual gateway's pieces live."""

    gateway_id: str
    line: str
    camera_port: int
    http_port: int
    config_path: Path


def gateway_config(
    fleet: FleetConfig, gateway_id: str, line: str, camera_port: int, http_port: int
) -> dict[str, Any]:
    """The agent YAML (as a dict) for one virtual gateway."""
    state_dir = fleet.workdir / gateway_id / "state"
    manifest = fleet.manifest or bundled_manifest()
    return {
        "gateway_id": gateway_id,
        "line": line,
        "station": "inspect-1",
        "topic_root": fleet.topic_root,
        "state_dir": str(state_dir.resolve()),
        "mqtt": {"url": fleet.broker_url},
        "sources": [
            {
                "type": "camera",
                "name": "cam1",
                "url": f"http://127.0.0.1:{camera_port}/stream.mjpg",
                "fps_limit": fleet.fps,
            }
        ],
        "models": [{"slot": "defect", "manifest": str(manifest.resolve()), "sources": ["cam1"]}],
        "runtime": {"threads": 1, "max_batch": 4, "max_wait_ms": 20},
        "outbox": {"batch_items": 100, "resend_after_s": 10},
        "http": {"host": "127.0.0.1", "port": http_port},
        "telemetry_interval_s": fleet.telemetry_interval_s,
    }


def add_fleet(supervisor: Supervisor, fleet: FleetConfig) -> list[VirtualGateway]:
    """Write each gateway's config and start its camera and agent under ``supervisor``."""
    sim = console_script("factory-sim")
    agent = console_script("edge-agent")
    gateways = []
    for index in range(fleet.count):
        gateway_id = validate_gateway_id(f"{fleet.gateway_prefix}-{index + 1}")
        line = fleet.lines[index % len(fleet.lines)]
        home = fleet.workdir / gateway_id
        home.mkdir(parents=True, exist_ok=True)
        gateway = VirtualGateway(gateway_id, line, free_port(), free_port(), home / "gateway.yaml")
        config = gateway_config(fleet, gateway_id, line, gateway.camera_port, gateway.http_port)
        gateway.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        seed = fleet.base_seed + index
        camera_argv = [
            sim, "camera", "--serve", str(gateway.camera_port), "--seed", str(seed),
            "--fps", str(fleet.fps), "--defect-rate", str(fleet.defect_rate),
        ]  # fmt: skip
        supervisor.add(Service(f"{gateway_id}/camera", camera_argv, home / "camera.log"))
        agent_argv = [agent, "--config", str(gateway.config_path)]
        supervisor.add(Service(f"{gateway_id}/agent", agent_argv, home / "agent.log"))
        gateways.append(gateway)
        log.info(
            "virtual gateway %s on %s (camera :%d, health :%d)",
            gateway_id,
            line,
            gateway.camera_port,
            gateway.http_port,
        )
    return gateways
