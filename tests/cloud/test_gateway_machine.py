"""The gateway's machine in the cloud: stored from its birth, served by the API, shown by factoryctl
and the console, and targeted by rollouts through its CPU class."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from cloud.auth.service import Role, create_user
from cloud.db import make_engine, make_sessionmaker
from cloud.db.models import Gateway
from protocol.messages import GatewayState, Telemetry, utcnow
from protocol.topics import Channel
from tests.support.console import ORIGIN, PASSWORD
from tests.support.machines import GRAVITON3, RISCV_BOARD, RYZEN, XEON
from tests.support.messages import ingest, state, telemetry
from tests.support.yard import Yard, loaded

MACHINES = {"gw-1": XEON, "gw-2": RYZEN, "gw-3": GRAVITON3, "gw-4": RISCV_BOARD}  # gw-4: no CPU class


def _fleet(yard: Yard) -> None:
    for gw, machine in MACHINES.items():
        yard.birth(gw, loaded("defect-cnn", "main", "defect"), machine=machine)


def _ingest(yard: Yard, msg: GatewayState | Telemetry, channel: Channel = Channel.STATE) -> None:
    ingest(yard.settings.db_url, yard.topics, msg.gateway_id, channel, msg)


def _stored(yard: Yard, gateway_id: str) -> Gateway:
    engine = make_engine(yard.settings.db_url)
    try:
        with make_sessionmaker(engine)() as session:
            gateway = session.get(Gateway, gateway_id)
            assert gateway is not None
            return gateway
    finally:
        engine.dispose()


def test_the_birth_machine_is_stored_and_the_api_returns_it(yard: Yard) -> None:
    _fleet(yard)
    stored = _stored(yard, "gw-1")
    assert (stored.cpu_class, stored.machine) == ("x86-64-avx512-vnni", XEON.model_dump(mode="json"))
    board = _stored(yard, "gw-4")
    assert (board.cpu_class, board.machine) == (None, RISCV_BOARD.model_dump(mode="json"))

    one = yard.client.get("/api/v1/gateways/gw-3", headers=yard.admin).json()
    assert one["machine"] == GRAVITON3.model_dump(mode="json")  # the wire form (tests/protocol)
    for query in ("", "?reported=true"):
        listed = yard.client.get(f"/api/v1/gateways{query}", headers=yard.admin).json()
        assert {g["id"]: (g["machine"] or {}).get("cpu_class") for g in listed} == {
            "gw-1": "x86-64-avx512-vnni",
            "gw-2": "x86-64-avx2",
            "gw-3": "arm64-i8mm",
            "gw-4": None,
        }
        assert next(g for g in listed if g["id"] == "gw-4")["machine"]["arch"] == "riscv64"


def test_each_birth_and_death_replaces_the_stored_machine(yard: Yard) -> None:
    """A gateway whose disk moved to other hardware says so in its next birth; a class the new
    machine lacks is cleared, so no stale CPU class is left for a rollout to target."""
    t = utcnow()
    _ingest(yard, state("gw-1", True, 1, t, machine=XEON))
    _ingest(yard, state("gw-1", False, 1, t + timedelta(seconds=5), machine=XEON))
    assert _stored(yard, "gw-1").cpu_class == "x86-64-avx512-vnni"
    assert yard.client.get("/api/v1/gateways/gw-1").json()["machine"]["cores"] == 4

    _ingest(yard, state("gw-1", True, 2, t + timedelta(seconds=10), machine=RISCV_BOARD))
    stored = _stored(yard, "gw-1")
    assert (stored.machine, stored.cpu_class) == (RISCV_BOARD.model_dump(mode="json"), None)

    moved = RYZEN.model_copy(update={"cores": 6})
    _ingest(yard, state("gw-1", True, 3, t + timedelta(seconds=20), machine=moved))
    assert yard.client.get("/api/v1/gateways/gw-1").json()["machine"]["cores"] == 6
    assert _stored(yard, "gw-1").cpu_class == "x86-64-avx2"


def test_factoryctl_devices_show_prints_the_machine(yard: Yard, capsys: pytest.CaptureFixture[str]) -> None:
    _fleet(yard)
    assert yard.ctl("devices", "show", "gw-1") == 0
    out = capsys.readouterr().out
    assert "machine: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz (x86_64)\n" in out
    assert "cpu class x86-64-avx512-vnni  cores 4  memory 16.0 GiB\n" in out
    assert "features avx2,fma,avx512f,avx512bw,avx512_vnni\n" in out

    assert yard.ctl("devices", "show", "gw-4") == 0
    assert "machine: unknown CPU (riscv64)\n  cpu class -  cores 4" in capsys.readouterr().out
    _ingest(yard, telemetry("gw-5"), Channel.TELEMETRY)  # seen, but no birth yet
    assert yard.ctl("devices", "show", "gw-5") == 0
    assert "machine: not reported" in capsys.readouterr().out

    assert yard.ctl("--json", "devices", "show", "gw-3") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["machine"] == GRAVITON3.model_dump(mode="json")
    assert "ota" in shown

    assert yard.ctl("devices", "list") == 0
    rows = capsys.readouterr().out.splitlines()
    header = rows[0].split()
    assert header[4] == "CPU_CLASS"
    assert {row.split()[0]: row.split()[4] for row in rows[1:]} == {
        "gw-1": "x86-64-avx512-vnni",
        "gw-2": "x86-64-avx2",
        "gw-3": "arm64-i8mm",
        "gw-4": "-",
        "gw-5": "-",
    }
    assert yard.ctl("--json", "devices", "list") == 0
    assert json.loads(capsys.readouterr().out)[1]["machine"]["cpu_class"] == "x86-64-avx2"


def test_a_rollout_by_cpu_class_targets_only_the_gateways_of_those_classes(
    yard: Yard, capsys: pytest.CaptureFixture[str]
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
    assert yard.ctl(*args, "--cpu-class", "x86-64-avx512-vnni", "--cpu-class", "arm64-i8mm") == 0
    from_cli = json.loads(capsys.readouterr().out)
    assert sorted(from_cli["gateways"]) == ["gw-1", "gw-3"]
    assert from_cli["target"]["cpu_class"] == ["x86-64-avx512-vnni", "arm64-i8mm"]


def test_a_cpu_class_no_gateway_has_is_refused_naming_the_filter(
    yard: Yard, capsys: pytest.CaptureFixture[str]
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
    assert yard.ctl(*args, "--cpu-class", "arm64-dotprod") == 1
    err = capsys.readouterr().err
    assert "matches no gateway with cpu_class ['arm64-dotprod']" in err
    assert "--cpu-class ('factoryctl devices list' shows them)" in err


def test_an_unknown_cpu_class_is_refused_listing_the_classes(
    yard: Yard, capsys: pytest.CaptureFixture[str]
) -> None:
    _fleet(yard)
    refused = yard.post(target={"cpu_class": ["x86-64-avx512"]})
    assert refused.status_code == 422, refused.text
    assert "unknown CPU class 'x86-64-avx512'; the classes are x86-64-avx512-vnni, " in refused.text
    args = ("rollouts", "create", "--model", "defect-cnn", "--version", "1.1", "--cpu-class", "avx2")
    assert yard.ctl(*args) == 1
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
    assert "<dt>CPU</dt><dd>unknown model (riscv64)</dd>" in client.get("/gateways/gw-4").text
    _ingest(yard, telemetry("gw-5"), Channel.TELEMETRY)  # seen, but no birth yet
    assert "Not reported:" in client.get("/gateways/gw-5").text

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
