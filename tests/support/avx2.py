"""Run the project's Python on the AVX2 kernel path, on any x86-64 machine.

onnxruntime picks its integer kernels by the CPU it finds: AVX-512 VNNI where there is one, the
AVX2 ``vpmaddubsw`` path (which saturates) where there is not. Debian's ``qemu-user`` emulates a
Haswell, which has AVX2 and no AVX-512, so the same Python under it takes the AVX2 path whatever
the host is (about 150x slower: keep the work small). On a host without VNNI both paths are the
AVX2 one and a comparison is trivially equal; on one with VNNI it compares the two.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# Haswell without the features TCG cannot emulate (each would print a warning per thread).
CPU = "Haswell-noTSX,-pcid,-x2apic,-tsc-deadline,-invpcid"
SCRIPTS = Path(__file__).parent / "scripts"


def qemu() -> str:
    """The qemu-x86_64 binary; a machine without it fails the test (``make test`` installs it)."""
    path = shutil.which("qemu-x86_64")
    if path is None:
        pytest.fail("qemu-x86_64 not found: `make test` installs Debian's qemu-user", pytrace=False)
    return path


def run_json(script: str, *args: str, avx2: bool, timeout: float = 900) -> Any:
    """Run ``tests/support/scripts/<script>`` natively or on the AVX2 path; its stdout is JSON."""
    command = [sys.executable, str(SCRIPTS / script), *args]
    if avx2:
        command = [qemu(), "-cpu", CPU, *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(command[:4])} ... exited {done.returncode}: {done.stderr[-2000:]}", pytrace=False
        )
    return json.loads(done.stdout)
