"""deploy/ and docker-compose.yml: there is no Docker engine here, so check what can be checked:
the files parse, every command a container or unit runs exists and accepts its flags, every
setting the cloud containers get is one the cloud reads, and every file they mount or include is
in the repository (or is documented as made by the operator). Every example config in the
repository is checked somewhere, by name."""

from __future__ import annotations

import argparse
import re
import shlex
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from cloud.cli import build_parser as cloud_parser
from cloud.config import CloudSettings, env_name, settings_from_environment
from edge_agent.main import _parser as agent_parser
from protocol.signing import generate_private_key, private_key_pem
from simulators.cli import build_parser as sim_parser

ROOT = Path(__file__).resolve().parents[1]
PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "factory-cloud": cloud_parser,
    "factory-sim": sim_parser,
    "edge-agent": agent_parser,
}
OPERATOR_MADE = {
    "deploy/mosquitto/passwd",
    "deploy/mosquitto/certs",
    "deploy/mosquitto/certs/ca.crt",
    "deploy/keys/desired-signing.pem",
}
CLOUD_SERVICES = ("api", "ingest", "worker")
# Every example config of the repository, and what checks it.
EXAMPLES = {
    "edge_agent/gateway.example.yaml": "tests/edge/test_example_config.py loads it and runs an agent on it",
    "deploy/mosquitto/passwd.example": "comments only: the mosquitto_passwd commands that make "
    "deploy/mosquitto/passwd (OPERATOR_MADE), which Mosquitto reads, not our code",
}
NOT_OURS = {".git", ".venv", "var", "test-artifacts", "node_modules"}


def _scripts() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def _check_command(argv: list[str], where: str) -> None:
    program = argv[0].rsplit("/", 1)[-1]
    assert program in _scripts(), f"{where}: {program} is not a console script of the package"
    try:
        PARSERS[program]().parse_args(argv[1:])
    except SystemExit as exc:
        pytest.fail(f"{where}: {' '.join(argv)} is refused by its own parser (exit {exc.code})")


def _compose() -> dict[str, dict[str, object]]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_services_run_commands_that_exist() -> None:
    services = _compose()["services"]
    ours = {name: s for name, s in services.items() if "build" in s}
    assert {"api", "ingest", "worker", "gateway-1", "gateway-2"} <= set(ours)
    assert {"mosquitto", "postgres", "redis"} <= set(services)
    for name, service in ours.items():
        command = service["command"]
        assert isinstance(command, list)
        _check_command(command, f"docker-compose.yml service {name}")


def test_compose_mounts_and_dockerfiles_exist() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        build = service.get("build")
        if isinstance(build, dict):
            assert (ROOT / str(build["dockerfile"])).is_file(), f"{name}: missing {build['dockerfile']}"
        for volume in service.get("volumes", []):  # type: ignore[attr-defined]
            source = str(volume).split(":")[0]
            if source.startswith("./"):
                rel = source[2:]
                assert (ROOT / rel).exists() or rel in OPERATOR_MADE, f"{name}: mounts missing {rel}"


def test_dockerfile_default_commands_exist() -> None:
    for dockerfile in (ROOT / "deploy" / "docker").glob("Dockerfile.*"):
        cmd = re.search(r"^CMD (\[.*\])$", dockerfile.read_text(), re.MULTILINE)
        assert cmd is not None, f"{dockerfile.name} has no exec-form CMD"
        _check_command(yaml.safe_load(cmd.group(1)), dockerfile.name)
        for copied in re.findall(r"^COPY (\S+) ", dockerfile.read_text(), re.MULTILINE):
            assert (ROOT / copied).exists(), f"{dockerfile.name} copies missing {copied}"


def test_systemd_unit_runs_the_agent() -> None:
    unit = (ROOT / "deploy" / "systemd" / "factory-edge-agent.service").read_text()
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.MULTILINE)
    assert exec_start is not None
    _check_command(shlex.split(exec_start.group(1)), "systemd ExecStart")
    assert "Restart=always" in unit


def test_mosquitto_acl_confines_gateways_to_their_subtree() -> None:
    acl = (ROOT / "deploy" / "mosquitto" / "acl").read_text()
    patterns = [line.split() for line in acl.splitlines() if line.startswith("pattern ")]
    assert patterns, "the ACL must have per-gateway patterns"
    assert all(p[2].startswith("factory/v1/%u/") for p in patterns), "a pattern reaches beyond %u's subtree"
    assert {p[2].rsplit("/", 1)[1] for p in patterns if p[1] == "read"} == {"ack", "desired", "captures"}


def test_compose_cloud_settings_are_settings_the_cloud_reads(tmp_path: Path) -> None:
    """Every FACTORY_* variable of the cloud containers names a setting, and together they make
    settings the production profile accepts (TLS to the broker, real credentials), with a broker
    identity of each service's own."""
    known = {env_name(field) for field in CloudSettings.model_fields}
    users = set()
    key = tmp_path / "desired-signing.pem"
    key.write_bytes(private_key_pem(generate_private_key()))
    for name in CLOUD_SERVICES:
        environment = _compose()["services"][name]["environment"]
        assert isinstance(environment, dict)
        # ${NAME:?message}: what the operator exports before `docker compose up`.
        values = {
            k: re.sub(r"\$\{\w+:\?[^}]*\}", "an-operator-secret", str(v)) for k, v in environment.items()
        }
        assert set(values) <= known, (
            f"{name}: settings the cloud does not read: {sorted(set(values) - known)}"
        )
        # The key is mounted from deploy/keys/ (OPERATOR_MADE); here a real one stands in.
        assert values["FACTORY_DESIRED_SIGNING_KEY"] == "/keys/desired-signing.pem"
        settings = settings_from_environment({**values, "FACTORY_DESIRED_SIGNING_KEY": str(key)})
        assert settings.profile == "production"
        assert settings.broker.tls
        users.add(settings.broker_username)
    assert users == {f"factory-{name}" for name in CLOUD_SERVICES}, "each service logs in as itself"


def test_mosquitto_acl_gives_each_cloud_service_only_its_job() -> None:
    """Ingest reads the gateways' channels and writes acks; the API and the worker write desired
    states and capture orders; no service writes into a gateway's own streams."""
    rights: dict[str, set[tuple[str, str]]] = {}
    user = None
    for line in (ROOT / "deploy" / "mosquitto" / "acl").read_text().splitlines():
        words = line.split()
        if words[:1] == ["user"]:
            user = words[1]
            rights[user] = set()
        elif words[:1] == ["topic"] and user is not None:
            rights[user].add((words[1], words[2]))
    writes = {("write", "factory/v1/+/desired"), ("write", "factory/v1/+/captures")}
    assert rights == {
        "factory-ingest": {("read", "factory/v1/+/+"), ("write", "factory/v1/+/ack")},
        "factory-api": writes,
        "factory-worker": writes,
    }


def test_every_example_config_is_checked() -> None:
    found = {path.name for path in ROOT.glob("*.example*")} | {
        path.relative_to(ROOT).as_posix()
        for top in ROOT.iterdir()
        if top.is_dir() and top.name not in NOT_OURS
        for path in top.rglob("*.example*")
    }
    assert found == set(EXAMPLES), f"example configs without a check: {sorted(found - set(EXAMPLES))}"


def test_the_container_images_run_the_production_profile() -> None:
    for image in ("Dockerfile.cloud", "Dockerfile.edge"):
        lines = (ROOT / "deploy" / "docker" / image).read_text().splitlines()
        assert "ENV FACTORY_PROFILE=production" in lines, f"{image} does not set the production profile"
