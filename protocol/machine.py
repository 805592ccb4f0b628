"""CPU classes: the short names a gateway's birth gives its CPU, and a rollout can target.

Both sides take the class from :func:`cpu_class`, so the gateway that reports it and the cloud
that matches rollouts against it agree on what each name means. A class names what int8
inference can use on that machine, best first per architecture:

| class | means | why it matters |
| --- | --- | --- |
| ``x86-64-avx512-vnni`` | x86-64 with AVX-512 VNNI (``avx512_vnni``) | 512-bit int8 dot products (Cascade Lake and later Xeons, Ice Lake, Zen 4) |
| ``x86-64-avx-vnni`` | x86-64 with AVX-VNNI (``avx_vnni``) but not AVX-512 VNNI | 256-bit int8 dot products (Alder Lake and later client chips) |
| ``x86-64-avx2`` | x86-64 with AVX2 and no VNNI | the common floor of int8 kernels (Haswell and later, Zen 1-3) |
| ``x86-64`` | x86-64 without AVX2 | baseline SSE kernels only (Atom-class, old or virtual CPUs) |
| ``arm64-i8mm`` | AArch64 with the int8 matrix multiply extension (``i8mm``) | Neoverse V1/N2, Cortex-A710 and later |
| ``arm64-dotprod`` | AArch64 with dot product (``asimddp``) but not i8mm | Cortex-A55/A75/A76, Neoverse N1 |
| ``arm64`` | AArch64 without dot product | Cortex-A53/A72 (e.g. Raspberry Pi 3 and 4) |

Another architecture (32-bit ARM, RISC-V, ...) has no class (``None``). A class is exact, not
"at least": a rollout for ``x86-64-avx2`` does not reach an ``x86-64-avx512-vnni`` gateway, so a
model that runs on several lists each class it should reach.
"""

from __future__ import annotations

from collections.abc import Iterable

X86_64_AVX512_VNNI = "x86-64-avx512-vnni"
X86_64_AVX_VNNI = "x86-64-avx-vnni"
X86_64_AVX2 = "x86-64-avx2"
X86_64 = "x86-64"
ARM64_I8MM = "arm64-i8mm"
ARM64_DOTPROD = "arm64-dotprod"
ARM64 = "arm64"

CPU_CLASSES: tuple[str, ...] = (
    X86_64_AVX512_VNNI,
    X86_64_AVX_VNNI,
    X86_64_AVX2,
    X86_64,
    ARM64_I8MM,
    ARM64_DOTPROD,
    ARM64,
)

# The ISA features a birth reports, named as Linux's /proc/cpuinfo does ("flags" on x86,
# "Features" on ARM). Only these: the full flag list is 100-200 words that say nothing about
# which inference kernels a machine can run, and would make every birth ten times larger.
X86_FEATURES: tuple[str, ...] = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
ARM_FEATURES: tuple[str, ...] = ("asimd", "asimddp", "i8mm", "bf16", "sve")
INFERENCE_FEATURES: tuple[str, ...] = X86_FEATURES + ARM_FEATURES

_X86_NAMES = {"x86_64", "amd64", "x64"}  # Linux and macOS, Windows, some BSD ports
_ARM64_NAMES = {"aarch64", "arm64", "aarch64_be"}  # Linux, macOS and Windows


def arch_family(machine: str | None) -> str | None:
    """``x86-64`` or ``arm64`` for what ``platform.machine()`` says, None for anything else."""
    name = (machine or "").strip().lower()
    if name in _X86_NAMES:
        return X86_64
    if name in _ARM64_NAMES:
        return ARM64
    return None


def cpu_class(machine: str | None, features: Iterable[str]) -> str | None:
    """The CPU class of a machine (``platform.machine()``) with these /proc/cpuinfo features."""
    have = set(features)
    family = arch_family(machine)
    if family == X86_64:
        if "avx512_vnni" in have:
            return X86_64_AVX512_VNNI
        if "avx_vnni" in have:
            return X86_64_AVX_VNNI
        if "avx2" in have:
            return X86_64_AVX2
        return X86_64
    if family == ARM64:
        if "i8mm" in have:
            return ARM64_I8MM
        if "asimddp" in have:
            return ARM64_DOTPROD
        return ARM64
    return None
