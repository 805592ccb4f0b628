"""The machine in the birth: CPU classes, MachineInfo's limits, and a birth without one refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given

from protocol.machine import CPU_CLASSES, INFERENCE_FEATURES, arch_family, cpu_class
from protocol.messages import GatewayState, MachineInfo, WireError, decode, encode
from tests.support import strategies as s
from tests.support.machines import XEON

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _birth(machine: MachineInfo) -> GatewayState:
    return GatewayState(
        gateway_id="gw-1", online=True, session=3, agent_version="0.4.0", timestamp=NOW, machine=machine
    )


@pytest.mark.parametrize(
    ("arch", "features", "expected"),
    [
        ("x86_64", {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"}, "x86-64-avx512-vnni"),
        ("x86_64", {"avx2", "avx_vnni"}, "x86-64-avx-vnni"),
        ("AMD64", {"avx2", "fma"}, "x86-64-avx2"),  # Windows names the architecture so
        ("x86_64", {"avx2", "avx512f"}, "x86-64-avx2"),  # AVX-512 without VNNI: no int8 dot products
        ("x86_64", set(), "x86-64"),
        ("aarch64", {"asimd", "asimddp", "i8mm"}, "arm64-i8mm"),
        ("arm64", {"asimd", "asimddp"}, "arm64-dotprod"),  # macOS names it so
        ("aarch64", {"asimd"}, "arm64"),
        ("armv7l", {"neon"}, None),
        ("riscv64", set(), None),
        ("", {"avx2"}, None),
        (None, set(), None),
    ],
)
def test_cpu_class_of_architecture_and_features(
    arch: str | None, features: set[str], expected: str | None
) -> None:
    assert cpu_class(arch, features) == expected
    assert expected is None or expected in CPU_CLASSES


def test_every_class_is_named_for_its_architecture() -> None:
    """The classes a rollout can target start with the family they belong to, best first."""
    for name in CPU_CLASSES:
        assert name.startswith(("x86-64", "arm64")), name
    assert arch_family("x86_64") == "x86-64"
    assert arch_family("aarch64") == "arm64"
    assert CPU_CLASSES.index("x86-64-avx512-vnni") < CPU_CLASSES.index("x86-64")
    assert CPU_CLASSES.index("arm64-i8mm") < CPU_CLASSES.index("arm64")


@given(s.states)
def test_births_round_trip_with_their_machine(birth: GatewayState) -> None:
    assert decode(GatewayState, encode(birth)) == birth


def test_birth_with_machine_round_trips_as_plain_json() -> None:
    birth = _birth(XEON)
    raw = json.loads(encode(birth))
    assert raw["machine"] == {
        "arch": "x86_64",
        "cpu_model": "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz",
        "cpu_class": "x86-64-avx512-vnni",
        "features": ["avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"],
        "cores": 4,
        "memory_bytes": 16 * 2**30,
    }
    assert decode(GatewayState, encode(birth)) == birth


@pytest.mark.parametrize("machine", ["absent", None])
def test_a_birth_without_its_machine_is_refused_naming_the_field(machine: str | None) -> None:
    """Every agent of this protocol sends its machine (fields it could not read are null)."""
    raw = json.loads(encode(_birth(XEON)))
    if machine == "absent":
        del raw["machine"]
    else:
        raw["machine"] = machine
    with pytest.raises(WireError, match="machine"):
        decode(GatewayState, json.dumps(raw).encode())


def test_a_machine_with_unknown_fields_is_empty_not_invalid() -> None:
    """Every field may be unknown (a machine whose /proc could not be read)."""
    empty = MachineInfo()
    assert (empty.arch, empty.cpu_model, empty.cpu_class, empty.features) == (None, None, None, ())
    assert decode(GatewayState, encode(_birth(empty))).machine == empty


def test_a_class_this_build_does_not_know_is_still_accepted() -> None:
    """A newer agent may name a class this cloud does not know: its birth must not be refused."""
    newer = XEON.model_copy(update={"cpu_class": "x86-64-amx"})
    assert decode(GatewayState, encode(_birth(newer))).machine == newer


@pytest.mark.parametrize(
    ("machine", "reason"),
    [
        ({"cpu_class": "X86 64"}, "machine.cpu_class: String should match pattern"),
        ({"features": ["avx2", "AVX 512"]}, "machine.features.1: String should match pattern"),
        ({"features": ["avx2", "avx2"]}, "machine.features: Value error, features are listed more than once"),
        ({"features": ["f"] * 33}, "machine.features: Tuple should have at most 32 items"),
        ({"cores": 0}, "machine.cores: Input should be greater than or equal to 1"),
        ({"memory_bytes": -1}, "machine.memory_bytes: Input should be greater than or equal to 0"),
        ({"cpu_model": "x" * 129}, "machine.cpu_model: Value should have at most 128 items"),
        ({"cpu_model": "bad\x00name"}, "machine.cpu_model: Value error, contains a NUL character"),
        ({"gpu": "none"}, "machine.gpu: Extra inputs are not permitted"),
    ],
)
def test_bad_machines_are_refused_naming_the_field(machine: dict[str, object], reason: str) -> None:
    raw = json.loads(encode(_birth(XEON)))
    raw["machine"] = machine
    with pytest.raises(WireError) as caught:
        decode(GatewayState, json.dumps(raw).encode())
    assert reason in caught.value.reason


def test_every_inference_feature_fits_the_wire() -> None:
    assert MachineInfo(features=INFERENCE_FEATURES).features == INFERENCE_FEATURES
