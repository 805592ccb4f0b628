"""The gateway's machine in the cloud: stored from its birth, served by the API, shown by factoryctl
and the console, and targeted by rollouts through its CPU class."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from cloud.auth.service import Role, create_user
from cloud.db import make_engine, make_sessionmaker
from cloud.db.models import Gateway
from cloud.factoryctl import cli as factoryctl
from cloud.ingest.service import ingest_messages
from protocol.messages import GatewayState, MachineInfo, utcnow
from protocol.topics import Channel
from tests.support.console import ORIGIN, PASSWORD
from tests.support.messages import inbound, state
from tests.support.yard import Yard, loaded

XEON = MachineInfo(
    arch="x86_64",
    cpu_model="Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz",
    cpu_class="x86-64-avx512-vnni",
    features=("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"),
    cores=4,
    memory_bytes=16 * 2**30,
)
RYZEN = MachineInfo(
    arch="x86_64",
    cpu_model="AMD Ryzen 7 3700X 8-Core Processor",
    cpu_class="x86-64-avx2",
    features=("avx2", "fma"),
    cores=8,
    memory_bytes=32 * 2**30,
)
GRAVITON3 = MachineInfo(
    arch="aarch64",
    cpu_model="ARM Neoverse-V1",
    cpu_class="arm64-i8mm",
    features=("asimd", "asimddp", "i8mm", "bf16", "sve"),
    cores=2,
    memory_bytes=4 * 2**30,
)
MACHINES = {"gw-1": XEON, "gw-2": RYZEN, "gw-3": GRAVITON3, "gw-4": None}  # gw-4: an older agent


def _fleet(yard: Yard) -> None:
    for gw, machine in MACHINES.items():
        yard.birth(gw, loaded("defect-cnn", "main", "defect"), machine=machine)


def _ingest(yard: Yard, msg: GatewayState) -> None:
    engine = make_engine(yard.settings.db_url)
    try:
        sessions = make_sessionmaker(engine)
        ingest_messages(sessions, [inbound(yard.topics, msg.gateway_id, Channel.STATE, msg)], yard.topics)
    finally:
        engine.dispose()


def _stored(yard: Yard, gateway_id: str) -> Gateway:
    engine = make_engine(yard.settings.db_url)
    try:
        with make_sessionmaker(engine)() as session:
            gateway = session.get(Gateway, gateway_id)
            assert gateway is not None
            return gateway
    finally:
        engine.dispose()


def _ctl(yard: Yard, tmp_path: Path, *argv: str) -> int:
    env = {
        "FACTORYCTL_CONFIG": str(tmp_path / "ctl" / "config.json"),
        "FACTORY_API_URL": "http://testserver",
        "FACTORY_API_TOKEN": yard.admin["Authorization"].removeprefix("Bearer "),
    }
    return factoryctl.main(list(argv), environ=env, client=yard.client)


def test_the_birth_machine_is_stored_and_the_api_returns_it(yard: Yard) -> None:
    _fleet(yard)
    stored = _stored(yard, "gw-1")
    assert (stored.cpu_class, stored.machine) == ("x86-64-avx512-vnni", XEON.model_dump(mode="json"))
    assert _stored(yard, "gw-4").machine is None

    one = yard.client.get("/api/v1/gateways/gw-3", headers=yard.admin).json()
    assert one["machine"] == {
        "arch": "aarch64",
        "cpu_model": "ARM Neoverse-V1",
        "cpu_class": "arm64-i8mm",
        "features": ["asimd", "asimddp", "i8mm", "bf16", "sve"],
        "cores": 2,
        "memory_bytes": 4 * 2**30,
    }
    for query in ("", "?reported=true"):
        listed = yard.client.get(f"/api/v1/gateways{query}", headers=yard.admin).json()
        assert {g["id"]: (g["machine"] or {}).get("cpu_class") for g in listed} == {
            "gw-1": "x86-64-avx512-vnni",
            "gw-2": "x86-64-avx2",
            "gw-3": "arm64-i8mm",
            "gw-4": None,
        }
        assert next(g for g in listed if g["id"] == "gw-4")["machine"] is None


def test_a_death_keeps_the_machine_and_a_birth_without_one_clears_it(yard: Yard) -> None:
    """The last will carries no news about the hardware; a birth from an agent that does not report
    its machine does, and no stale CPU class is left for a rollout to target."""
    t = utcnow()
    birth = state("gw-1", True, 1, t).model_copy(update={"machine": XEON})
    _ingest(yard, birth)
    _ingest(yard, state("gw-1", False, 1, t + timedelta(seconds=5)))
    assert _stored(yard, "gw-1").cpu_class == "x86-64-avx512-vnni"
    assert yard.client.get("/api/v1/gateways/gw-1").json()["machine"]["cores"] == 4

    _ingest(yard, state("gw-1", True, 2, t + timedelta(seconds=10)))  # the agent was downgraded
    stored = _stored(yard, "gw-1")
    assert (stored.machine, stored.cpu_class) == (None, None)

    moved = RYZEN.model_copy(update={"cores": 6})
    _ingest(yard, state("gw-1", True, 3, t + timedelta(seconds=20)).model_copy(update={"machine": moved}))
    assert yard.client.get("/api/v1/gateways/gw-1").json()["machine"]["cores"] == 6
    assert _stored(yard, "gw-1").cpu_class == "x86-64-avx2"


def test_factoryctl_devices_show_prints_the_machine(
    yard: Yard, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fleet(yard)
    assert _ctl(yard, tmp_path, "devices", "show", "gw-1") == 0
    out = capsys.readouterr().out
    assert "machine: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz (x86_64)\n" in out
    assert "cpu class x86-64-avx512-vnni  cores 4  memory 16.0 GiB\n" in out
    assert "features avx2,fma,avx512f,avx512bw,avx512_vnni\n" in out

    assert _ctl(yard, tmp_path, "devices", "show", "gw-4") == 0
    assert "machine: not reported" in capsys.readouterr().out

    assert _ctl(yard, tmp_path, "--json", "devices", "show", "gw-3") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["machine"] == GRAVITON3.model_dump(mode="json")
    assert "ota" in shown

    assert _ctl(yard, tmp_path, "devices", "list") == 0
    rows = capsys.readouterr().out.splitlines()
    header = rows[0].split()
    assert header[4] == "CPU_CLASS"
    assert {row.split()[0]: row.split()[4] for row in rows[1:]} == {
        "gw-1": "x86-64-avx512-vnni",
        "gw-2": "x86-64-avx2",
        "gw-3": "arm64-i8mm",
        "gw-4": "-",
    }
    assert _ctl(yard, tmp_path, "--json", "devices", "list") == 0
    assert json.loads(capsys.readouterr().out)[1]["machine"]["cpu_class"] == "x86-64-avx2"


def test_a_rollout_by_cpu_class_targets_only_the_gateways_of_those_classes(
    yard: Yard, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fleet(yard)
    created = yard.create(target={"cpu_class": ["x86-64-avx2", "arm64-i8mm"]})
    assert sorted(created["gateways"]) == ["gw-2", "gw-3"]
    assert created["target"]["cpu_class"] == ["x86-64-avx2", "arm64-i8mm"]
    yard.act(created["id"], "abort")

    # With another filter every one must hold; listed ids are always in (as for the other filters).
    both = yard.create(target={"cpu_class": ["x86-64-avx512-vnni"], "line": "line-1", "gateways": ["gw-4"]})
    assert sorted(both["gateways"]) == ["gw-1", "gw-4"]
    yard.act(both["id"], "abort")

    args = ("--json", "rollouts", "create", "--model", "defect-cnn", "--version", "1.1", "--waves", "100%")
    assert _ctl(yard, tmp_path, *args, "--cpu-class", "x86-64-avx512-vnni", "--cpu-class", "arm64-i8mm") == 0
    from_cli = json.loads(capsys.readouterr().out)
    assert sorted(from_cli["gateways"]) == ["gw-1", "gw-3"]
    assert from_cli["target"]["cpu_class"] == ["x86-64-avx512-vnni", "arm64-i8mm"]


def test_a_cpu_class_no_gateway_has_is_refused_naming_the_filter(
    yard: Yard, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fleet(yard)
    refused = yard.post(target={"cpu_class": ["arm64-dotprod"]})
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == (
        "the target matches no gateway with cpu_class ['arm64-dotprod'] (gateways have cpu_class: "
        "arm64-i8mm, x86-64-avx2, x86-64-avx512-vnni; 1 gateway(s) report no CPU class)"
    )
    assert yard.client.get("/api/v1/rollouts", headers=yard.admin).json() == []

    args = ("rollouts", "create", "--model", "defect-cnn", "--version", "1.1", "--waves", "100%")
    assert _ctl(yard, tmp_path, *args, "--cpu-class", "arm64-dotprod") == 1
    err = capsys.readouterr().err
    assert "matches no gateway with cpu_class ['arm64-dotprod']" in err
    assert "--cpu-class ('factoryctl devices list' shows them)" in err


def test_an_unknown_cpu_class_is_refused_listing_the_classes(
    yard: Yard, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fleet(yard)
    refused = yard.post(target={"cpu_class": ["x86-64-avx512"]})
    assert refused.status_code == 422, refused.text
    assert "unknown CPU class 'x86-64-avx512'; the classes are x86-64-avx512-vnni, " in refused.text
    args = ("rollouts", "create", "--model", "defect-cnn", "--version", "1.1", "--cpu-class", "avx2")
    assert _ctl(yard, tmp_path, *args) == 1
    assert "--cpu-class: unknown CPU class 'avx2'; the classes are" in capsys.readouterr().err


def test_the_console_shows_the_machine_and_its_rollout_form_targets_a_cpu_class(yard: Yard) -> None:
    _fleet(yard)
    engine = make_engine(yard.settings.db_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            create_user(session, "ada", PASSWORD, Role.admin)
    finally:
        engine.dispose()
    client = yard.client
    login = client.post(
        "/login", data={"username": "ada", "password": PASSWORD}, headers=ORIGIN, follow_redirects=False
    )
    assert login.status_code == 303, login.text

    page = client.get("/gateways/gw-1").text
    assert "<h2>Machine" in page
    assert "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz (x86_64)" in page
    assert "<dt>CPU class</dt><dd>x86-64-avx512-vnni</dd>" in page
    assert "avx2, fma, avx512f, avx512bw, avx512_vnni" in page
    assert "<dt>Cores</dt><dd>4</dd>" in page
    assert "<dt>Memory</dt><dd>16.0 GiB</dd>" in page
    assert "Not reported: this gateway's agent predates machine reports" in client.get("/gateways/gw-4").text

    form = client.get("/rollouts").text
    assert 'name="cpu_class"' in form
    base = {"model_name": "defect-cnn", "version": "1.1", "waves": "100%", "bake_s": "0"}
    none = client.post("/rollouts", data={**base, "cpu_class": "arm64-dotprod"}, headers=ORIGIN)
    assert 'id="error-target"' in none.text
    assert "matches no gateway with cpu_class [&#39;arm64-dotprod&#39;]" in none.text
    made = client.post(
        "/rollouts",
        data={**base, "cpu_class": "arm64-i8mm, x86-64-avx2"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    rollout = yard.get(client.get("/api/v1/rollouts", headers=yard.admin).json()[0]["id"])
    assert sorted(rollout["gateways"]) == ["gw-2", "gw-3"]
    assert "CPU class arm64-i8mm, x86-64-avx2" in client.get(made.headers["location"]).text
