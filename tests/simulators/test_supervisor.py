"""The demo's process supervisor: crashed services come back, shutdown goes tier by tier, and how a
service ended is said in words."""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

import pytest

from simulators.supervisor import Service, Supervisor, how_it_ended

# Appends "<name> start" when it starts and "<name> stop" when SIGTERM arrives.
RECORDER = """
import signal, sys, time
name, path = sys.argv[1], sys.argv[2]
def log(what):
    with open(path, "a") as f:
        f.write(f"{name} {what}\\n")
def stop(*_):
    log("stop"); time.sleep(0.2); sys.exit(0)
signal.signal(signal.SIGTERM, stop)
log("start")
while True:
    time.sleep(0.05)
"""


def _recorder(tmp_path: Path, name: str, tier: int) -> Service:
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER)
    argv = [sys.executable, str(script), name, str(tmp_path / "events.txt")]
    return Service(name, argv, tmp_path / f"{name}.log", tier=tier)


def _wait_lines(path: Path, count: int) -> list[str]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"expected {count} lines in {path}")


def test_higher_tiers_stop_before_lower_ones(tmp_path: Path) -> None:
    supervisor = Supervisor()
    supervisor.add(_recorder(tmp_path, "broker", tier=0))
    supervisor.add(_recorder(tmp_path, "agent", tier=2))
    supervisor.add(_recorder(tmp_path, "ingest", tier=1))
    supervisor.start()
    _wait_lines(tmp_path / "events.txt", 3)
    supervisor.stop()
    stops = [line.split()[0] for line in (tmp_path / "events.txt").read_text().splitlines() if "stop" in line]
    assert stops == ["agent", "ingest", "broker"]
    assert all(s.process is not None and s.process.poll() is not None for s in supervisor.services)


def test_crashed_service_is_restarted_with_backoff(tmp_path: Path) -> None:
    marker = tmp_path / "starts.txt"
    crasher = Service(
        "crasher",
        [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x'); raise SystemExit(3)"],
        tmp_path / "crasher.log",
    )
    supervisor = Supervisor(poll_s=0.05)
    supervisor.add(crasher)
    supervisor.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not marker.exists() or len(marker.read_text()) < 2):
            time.sleep(0.05)
    finally:
        supervisor.stop()
    assert len(marker.read_text()) >= 2, "the crashed service was not started again"
    assert crasher.restarts >= 1


def test_exit_codes_in_words() -> None:
    assert how_it_ended(-signal.SIGTERM) == "stopped by signal SIGTERM"
    assert how_it_ended(128 + signal.SIGKILL) == "stopped by signal SIGKILL (exit code 137)"
    assert how_it_ended(3) == "exited with code 3"
    assert how_it_ended(0).startswith("exited with code 0 (")


def test_supervisor_says_a_service_was_stopped_by_a_signal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    argv = [sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"]
    supervisor = Supervisor(poll_s=0.05)
    service = supervisor.add(Service("ingest", argv, tmp_path / "ingest.log"))
    supervisor.start()
    try:
        assert service.process is not None
        time.sleep(0.3)
        with caplog.at_level(logging.WARNING, logger="simulators.supervisor"):
            service.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while "restarting" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
        assert "ingest stopped by signal SIGTERM; restarting in 1s" in caplog.text
        assert "exited with code" not in caplog.text
    finally:
        supervisor.stop(timeout_s=5)
