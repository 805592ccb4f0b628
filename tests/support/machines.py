"""Gateway machines as a birth reports them (``MachineInfo``), one per CPU class a test needs."""

from __future__ import annotations

from protocol.messages import MachineInfo


def _machine(
    arch: str, model: str | None, cpu_class: str | None, features: str, cores: int, gib: int
) -> MachineInfo:
    return MachineInfo(
        arch=arch,
        cpu_model=model,
        cpu_class=cpu_class,
        features=tuple(features.split()),
        cores=cores,
        memory_bytes=gib * 2**30,
    )


XEON = _machine(
    "x86_64",
    "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz",
    "x86-64-avx512-vnni",
    "avx2 fma avx512f avx512bw avx512_vnni",
    4,
    16,
)
RYZEN = _machine("x86_64", "AMD Ryzen 7 3700X 8-Core Processor", "x86-64-avx2", "avx2 fma", 8, 32)
GRAVITON3 = _machine("aarch64", "ARM Neoverse-V1", "arm64-i8mm", "asimd asimddp i8mm bf16 sve", 2, 4)
# An architecture without CPU classes: a rollout cannot target it by class.
RISCV_BOARD = _machine("riscv64", None, None, "", 4, 8)
# The machine of a test's gateway when the test is not about machines.
GATEWAY_MACHINE = RYZEN
