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
import tempfile
from pathlib import Path
from typing import Any

import pytest

# Haswell without the features TCG cannot emulate (each would print a warning per thread).
CPU = "Haswell-noTSX,-pcid,-x2apic,-tsc-deadline,-invpcid"
SCRIPTS = Path(__file__).parent / "scripts"
# Emulated runs are niced: the tests running beside them come first, and some wait on wall time.
NICENESS = 10


def qemu() -> str:
    """The qemu-x86_64 binary; a machine without it fails the test (``make test`` installs it)."""
    path = shutil.which("qemu-x86_64")
    if path is None:
        pytest.fail("qemu-x86_64 not found: `make test` installs Debian's qemu-user", pytrace=False)
    return path


class EmulatedRun:
    """One script started on the emulated AVX2 path; its output goes to files, never a full pipe."""

    def __init__(self, script: str, *args: str) -> None:
        self.command = [qemu(), "-cpu", CPU, sys.executable, str(SCRIPTS / script), *args]
        # Closed by result() or stop(): the run outlives this call.
        self._stdout = tempfile.TemporaryFile()  # noqa: SIM115
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self._process = subprocess.Popen(
            ["nice", "-n", str(NICENESS), *self.command],
            stdout=self._stdout,
            stderr=self._stderr,
        )

    def result(self, timeout: float) -> Any:
        """Wait for the script and parse its JSON stdout; a failure fails the calling test."""
        try:
            code = self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"{' '.join(self.command[:4])} ... still running after {timeout:g} s", pytrace=False)
        self._stdout.seek(0)
        self._stderr.seek(0)
        stdout, stderr = self._stdout.read().decode(), self._stderr.read().decode()
        self._close()
        if code != 0:
            pytest.fail(f"{' '.join(self.command[:4])} ... exited {code}: {stderr[-2000:]}", pytrace=False)
        return json.loads(stdout)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._close()

    def _close(self) -> None:
        self._stdout.close()
        self._stderr.close()


# Runs begun when collection finished (tests/conftest.py), keyed by script and arguments: the
# emulator needs minutes of one core, which the rest of the suite, mostly one process, leaves idle.
_EARLY: dict[tuple[str, ...], EmulatedRun] = {}


def start_early(items: list[pytest.Item]) -> None:
    """Start the emulated runs the selected tests declare with ``@pytest.mark.emulated_avx2``."""
    if shutil.which("qemu-x86_64") is None:
        return  # the test itself fails, naming what to install
    for item in items:
        for mark in item.iter_markers("emulated_avx2"):
            key = tuple(mark.args)
            if key not in _EARLY:
                _EARLY[key] = EmulatedRun(*key)


def stop_early() -> None:
    """Kill runs no test collected (an interrupted or failed session)."""
    for run in _EARLY.values():
        run.stop()
    _EARLY.clear()


def run_json(script: str, *args: str, avx2: bool, timeout: float = 900) -> Any:
    """Run ``tests/support/scripts/<script>`` natively or on the AVX2 path; its stdout is JSON.

    On the AVX2 path, a run started early for the same script and arguments is collected instead.
    """
    if avx2:
        run = _EARLY.pop((script, *args), None) or EmulatedRun(script, *args)
        return run.result(timeout)
    command = [sys.executable, str(SCRIPTS / script), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(command[:4])} ... exited {done.returncode}: {done.stderr[-2000:]}", pytrace=False
        )
    return json.loads(done.stdout)
