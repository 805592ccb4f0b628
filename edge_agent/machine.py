"""What machine the agent runs on, for its birth message: CPU, ISA features, cores, memory.

Read from /proc/cpuinfo and /proc/meminfo on Linux. Elsewhere, or where a file is missing or
unreadable, the fields it would give are None (or no features): a gateway whose machine cannot be
read must still be born, so nothing here raises.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from protocol.machine import INFERENCE_FEATURES, cpu_class
from protocol.messages import MachineInfo, wire_text

log = logging.getLogger(__name__)

PROC = Path("/proc")
CPU_MODEL_LEN = 128  # MachineInfo.cpu_model's limit

# Keys naming the CPU in /proc/cpuinfo: x86 has "model name", MIPS and s390x "cpu model". arm64
# kernels rarely name it: the core is then looked up by "CPU part", and failing that the board
# ("Model" on a Raspberry Pi), the SoC ("Hardware") or an old kernel's "Processor" stands in.
_MODEL_KEYS = ("model name", "cpu model")
_BOARD_KEYS = ("Model", "Hardware", "Processor")
_FEATURE_KEYS = ("flags", "Features")  # x86, ARM
# Arm Ltd's cores by "CPU part" (implementer 0x41), for arm64 kernels that print no model name.
_ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd0d": "Cortex-A77",
    "0xd40": "Neoverse-V1",
    "0xd41": "Cortex-A78",
    "0xd46": "Cortex-A510",
    "0xd47": "Cortex-A710",
    "0xd48": "Cortex-X2",
    "0xd49": "Neoverse-N2",
    "0xd4b": "Cortex-A78C",
    "0xd4f": "Neoverse-V2",
}


@dataclass(frozen=True)
class CpuInfo:
    """What /proc/cpuinfo says: the CPU's name and the inference features every CPU has."""

    model: str | None
    features: tuple[str, ...]


def parse_cpuinfo(text: str) -> CpuInfo:
    """The CPU model and the :data:`INFERENCE_FEATURES` present in /proc/cpuinfo ``text``."""
    fields: dict[str, str] = {}
    feature_sets: list[set[str]] = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key in _FEATURE_KEYS:
            feature_sets.append(set(value.split()))
        else:
            fields.setdefault(key, value)  # the first processor's; they repeat per CPU
    # Only what every listed CPU has: work may be scheduled on any of them.
    common = set.intersection(*feature_sets) if feature_sets else set()
    features = tuple(f for f in INFERENCE_FEATURES if f in common)
    return CpuInfo(model=_model_name(fields), features=features)


def _model_name(fields: dict[str, str]) -> str | None:
    for key in _MODEL_KEYS:
        if fields.get(key):
            return fields[key]
    implementer, part = fields.get("CPU implementer", "").lower(), fields.get("CPU part", "").lower()
    if implementer == "0x41" and part in _ARM_PARTS:
        return f"ARM {_ARM_PARTS[part]}"
    for key in _BOARD_KEYS:
        if fields.get(key):
            return fields[key]
    if implementer and part:
        return f"CPU implementer {implementer} part {part}"
    return None


def parse_meminfo(text: str) -> int | None:
    """MemTotal in bytes from /proc/meminfo ``text`` (the kernel writes kB, meaning KiB)."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "MemTotal":
            parts = value.split()
            unit = parts[1].lower() if len(parts) > 1 else "kb"
            if parts and parts[0].isascii() and parts[0].isdigit() and unit == "kb":
                return int(parts[0]) * 1024
            return None  # a unit the kernel never writes: better unknown than wrong by 1024
    return None


def usable_cores() -> int | None:
    """Logical CPUs this process may run on (its affinity mask: a pinned agent sees its share)."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return len(os.sched_getaffinity(0)) or None
        except OSError:
            pass
    return os.cpu_count()


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _sysconf_memory() -> int | None:
    # Non-Linux Unixes (macOS, the BSDs) answer through sysconf; Windows has neither.
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def _platform_cpu_name() -> str | None:
    # Only Windows names the CPU there ("Intel64 Family 6 Model 85 ..."); elsewhere it says
    # "x86_64", "arm" or "i386", which is the architecture again, not a model.
    return (platform.processor() or None) if sys.platform == "win32" else None


def read_machine(proc: Path = PROC, machine: str | None = None) -> MachineInfo:
    """This machine as a :class:`MachineInfo`; ``proc`` and ``machine`` (the architecture) for tests."""
    arch = platform.machine() if machine is None else machine
    cpuinfo = _read(proc / "cpuinfo")
    cpu = parse_cpuinfo(cpuinfo) if cpuinfo is not None else CpuInfo(_platform_cpu_name(), ())
    meminfo = _read(proc / "meminfo")
    memory = parse_meminfo(meminfo) if meminfo is not None else None
    try:
        return MachineInfo(
            arch=wire_text(arch, 32) if arch else None,
            cpu_model=wire_text(cpu.model, CPU_MODEL_LEN) if cpu.model else None,
            cpu_class=cpu_class(arch, cpu.features),
            features=cpu.features,
            cores=usable_cores(),
            memory_bytes=memory if memory is not None else _sysconf_memory(),
        )
    except ValidationError as exc:
        # Not expected (every value is made to fit above), but a birth without its machine is
        # far better than no birth: the cloud would not see the gateway online at all.
        log.warning("machine description left out of the birth: %s", exc)
        return MachineInfo()
