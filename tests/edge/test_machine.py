"""edge_agent.machine: /proc/cpuinfo and /proc/meminfo samples -> CPU model, features, class; the birth carries it."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.agent import Agent
from edge_agent.machine import parse_cpuinfo, parse_meminfo, read_machine, usable_cores
from protocol.machine import cpu_class
from protocol.messages import MachineInfo
from protocol.topics import TopicSpace
from tests.support.agent import agent_config, build_model, write_frames
from tests.support.fake_cloud import FakeCloud
from tests.support.waiting import wait_for

# Two vCPUs of a Cascade Lake Xeon (AVX-512 VNNI), as a cloud VM's kernel prints them.
INTEL_XEON_VNNI = """\
processor	: 0
vendor_id	: GenuineIntel
cpu family	: 6
model		: 85
model name	: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz
stepping	: 7
microcode	: 0x5003604
cpu MHz		: 2500.000
cache size	: 28160 KB
physical id	: 0
siblings	: 2
core id		: 0
cpu cores	: 1
fpu		: yes
cpuid level	: 22
wp		: yes
flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch invpcid_single ssbd ibrs ibpb stibp ibrs_enhanced fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid mpx avx512f avx512dq rdseed adx smap clflushopt clwb avx512cd avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves arat pku ospke avx512_vnni md_clear arch_capabilities
bugs		: spectre_v1 spectre_v2 spec_store_bypass swapgs taa mmio_stale_data retbleed
bogomips	: 5000.00
clflush size	: 64
address sizes	: 46 bits physical, 48 bits virtual
power management:

processor	: 1
vendor_id	: GenuineIntel
cpu family	: 6
model		: 85
model name	: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz
stepping	: 7
flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch invpcid_single ssbd ibrs ibpb stibp ibrs_enhanced fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid mpx avx512f avx512dq rdseed adx smap clflushopt clwb avx512cd avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves arat pku ospke avx512_vnni md_clear arch_capabilities
bogomips	: 5000.00
power management:

"""

# A Zen 2 desktop part: AVX2 and FMA, no AVX-512, no VNNI.
AMD_RYZEN_AVX2 = """\
processor	: 0
vendor_id	: AuthenticAMD
cpu family	: 23
model		: 113
model name	: AMD Ryzen 7 3700X 8-Core Processor
stepping	: 0
cpu MHz		: 2200.000
cache size	: 512 KB
flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl nonstop_tsc cpuid extd_apicid aperfmperf rapl pni pclmulqdq monitor ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand lahf_lm cmp_legacy svm extapic cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw ibs skinit wdt tce topoext perfctr_core perfctr_nb bpext perfctr_llc mwaitx cpb cat_l3 cdp_l3 hw_pstate ssbd mba ibpb stibp vmmcall fsgsbase bmi1 avx2 smep bmi2 cqm rdt_a rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves cqm_llc cqm_occup_llc cqm_mbm_total cqm_mbm_local clzero irperf xsaveerptr rdpru wbnoinvd arat npt lbrv svm_lock nrip_save tsc_scale vmcb_clean flushbyasid decodeassists pausefilter pfthreshold avic v_vmsave_vmload vgif v_spec_ctrl umip rdpid overflow_recov succor smca sme sev sev_es
bugs		: sysret_ss_attrs spectre_v1 spectre_v2 spec_store_bypass retbleed smt_rsb
bogomips	: 7186.24
power management: ts ttp tm hwpstate cpb eff_freq_ro [13] [14]

"""

# An AWS Graviton3 (Neoverse V1): dot product and int8 matrix multiply. arm64 kernels print no
# model name; "svei8mm" (SVE's variant) must not be read as i8mm by a substring match.
ARM_GRAVITON3 = """\
processor	: 0
BogoMIPS	: 2100.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x1
CPU part	: 0xd40
CPU revision	: 1

processor	: 1
BogoMIPS	: 2100.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x1
CPU part	: 0xd40
CPU revision	: 1

"""

# An AWS Graviton2 (Neoverse N1): dot product, no i8mm.
ARM_GRAVITON2 = """\
processor	: 0
BogoMIPS	: 243.75
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x3
CPU part	: 0xd0c
CPU revision	: 1
"""

# A Raspberry Pi 4 on a 64-bit OS (Cortex-A72): neither dot product nor i8mm.
ARM_RPI4 = """\
processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

Hardware	: BCM2835
Revision	: c03114
Serial		: 100000000abcdef0
Model		: Raspberry Pi 4 Model B Rev 1.4
"""

MEMINFO = """\
MemTotal:       16131932 kB
MemFree:         9612044 kB
MemAvailable:   13020364 kB
Buffers:          321344 kB
"""


@pytest.mark.parametrize(
    ("text", "arch", "model", "features", "expected_class"),
    [
        (
            INTEL_XEON_VNNI,
            "x86_64",
            "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz",
            ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"),
            "x86-64-avx512-vnni",
        ),
        (AMD_RYZEN_AVX2, "x86_64", "AMD Ryzen 7 3700X 8-Core Processor", ("avx2", "fma"), "x86-64-avx2"),
        (
            ARM_GRAVITON3,
            "aarch64",
            "ARM Neoverse-V1",
            ("asimd", "asimddp", "i8mm", "bf16", "sve"),
            "arm64-i8mm",
        ),
        (ARM_GRAVITON2, "aarch64", "ARM Neoverse-N1", ("asimd", "asimddp"), "arm64-dotprod"),
        (ARM_RPI4, "aarch64", "ARM Cortex-A72", ("asimd",), "arm64"),
    ],
    ids=["intel-avx512-vnni", "amd-avx2", "arm-i8mm", "arm-dotprod", "arm-plain"],
)
def test_cpuinfo_samples_give_model_features_and_class(
    text: str, arch: str, model: str, features: tuple[str, ...], expected_class: str
) -> None:
    cpu = parse_cpuinfo(text)
    assert cpu.model == model
    assert cpu.features == features
    assert cpu_class(arch, cpu.features) == expected_class


def test_a_feature_only_some_cpus_have_is_not_reported() -> None:
    """Work may run on any CPU, so only the features they all have count (hybrid or odd VMs)."""
    second_without_vnni = INTEL_XEON_VNNI.replace(
        "avx512_vnni md_clear arch_capabilities\nbogomips", "md_clear\nbogomips"
    )
    assert "avx512_vnni" in parse_cpuinfo(INTEL_XEON_VNNI).features
    cpu = parse_cpuinfo(second_without_vnni)
    assert "avx512_vnni" not in cpu.features
    assert cpu_class("x86_64", cpu.features) == "x86-64-avx2"


def test_amx_and_avx_vnni_are_reported_by_their_kernel_names() -> None:
    sapphire_rapids = "model name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: avx2 avx512f avx512_vnni avx_vnni amx_bf16 amx_tile amx_int8\n"
    cpu = parse_cpuinfo(sapphire_rapids)
    assert cpu.features == ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
    assert cpu_class("x86_64", cpu.features) == "x86-64-avx512-vnni"
    alder_lake = parse_cpuinfo(
        "model name\t: 12th Gen Intel(R) Core(TM) i5-1235U\nflags\t\t: avx avx2 fma avx_vnni\n"
    )
    assert cpu_class("x86_64", alder_lake.features) == "x86-64-avx-vnni"


def test_meminfo_total_in_bytes() -> None:
    assert parse_meminfo(MEMINFO) == 16131932 * 1024
    assert parse_meminfo("MemFree: 12 kB\n") is None
    assert parse_meminfo("MemTotal: lots\n") is None
    assert parse_meminfo("MemTotal: 12 MB\n") is None  # not a unit the kernel writes


@given(st.text())
def test_any_text_parses_without_raising(text: str) -> None:
    cpu = parse_cpuinfo(text)
    assert all(isinstance(f, str) for f in cpu.features)
    memory = parse_meminfo(text)
    assert memory is None or memory >= 0


def test_read_machine_from_a_proc_folder(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text(ARM_GRAVITON3)
    (tmp_path / "meminfo").write_text(MEMINFO)
    machine = read_machine(tmp_path, machine="aarch64")
    assert machine == MachineInfo(
        arch="aarch64",
        cpu_model="ARM Neoverse-V1",
        cpu_class="arm64-i8mm",
        features=("asimd", "asimddp", "i8mm", "bf16", "sve"),
        cores=usable_cores(),
        memory_bytes=16131932 * 1024,
    )


def test_missing_or_unreadable_proc_leaves_fields_unknown_and_never_raises(tmp_path: Path) -> None:
    """No /proc (another OS, a sandbox): no model, no features; the architecture still gives a class."""
    machine = read_machine(tmp_path, machine="x86_64")
    assert (machine.cpu_model, machine.features, machine.cpu_class) == (None, (), "x86-64")
    # Unreadable files (here: folders where the files should be) and an unknown architecture.
    (tmp_path / "cpuinfo").mkdir()
    (tmp_path / "meminfo").mkdir()
    odd = read_machine(tmp_path, machine="")
    assert (odd.arch, odd.cpu_model, odd.cpu_class, odd.features) == (None, None, None, ())
    # Without meminfo, memory comes from sysconf where the OS has it, else it stays unknown.
    assert odd.memory_bytes is None or odd.memory_bytes > 0


def test_garbage_cpuinfo_gives_a_valid_machine(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_bytes(
        b"model name\t: \xff\xfe\x01weird\x00 chip " + b"x" * 300 + b"\nflags : \xff\n"
    )
    (tmp_path / "meminfo").write_bytes(b"\x00\x01")
    machine = read_machine(tmp_path, machine="riscv64")
    assert machine.cpu_model is not None
    assert len(machine.cpu_model) <= 128
    assert "\x00" not in machine.cpu_model  # control characters spelled out, as the wire wants
    assert (machine.cpu_class, machine.features) == (None, ())


def test_this_machine_is_read_as_it_is() -> None:
    machine = read_machine()
    assert machine.arch == platform.machine()
    assert machine.cores == len(os.sched_getaffinity(0))
    assert machine.memory_bytes is not None
    assert machine.memory_bytes > 0
    assert machine.cpu_class == cpu_class(machine.arch, machine.features)


def test_the_birth_carries_the_machine(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    manifest = build_model(tmp_path / "model")
    frames = tmp_path / "frames"
    write_frames(frames, [10, 240])
    cloud = FakeCloud(mosquitto, topic_space, "gw-test", ack=True)
    agent = Agent(agent_config(tmp_path, mosquitto, topic_space, manifest, frames))
    try:
        agent.start()
        wait_for(lambda: any(s.online for s in cloud.states), 10, "the birth")
        birth = next(s for s in cloud.states if s.online)
        assert birth.machine is not None
        assert birth.machine == read_machine()
        assert birth.machine.cores == len(os.sched_getaffinity(0))
    finally:
        agent.stop()
    wait_for(lambda: not cloud.states[-1].online, 5, "the clean death")
    assert cloud.states[-1].machine == birth.machine
    cloud.close()
