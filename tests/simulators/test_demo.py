"""`factory-sim demo` as a new user runs it: three gateways online and results in the API in 30 s,
and Ctrl-C stops every process it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from simulators.net import free_port


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - local test server
        return json.load(response)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    pairs = [tuple(int(x) for x in line.split()) for line in out.splitlines() if line.strip()]
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, ppid in pairs if ppid == parent]
        found += kids
        frontier += kids
    return found


def test_demo_brings_three_gateways_online_with_results_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    sim = str(Path(sys.executable).parent / "factory-sim")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_")}
    proc = subprocess.Popen(
        [sim, "demo", "--api-port", str(port), "--workdir", str(tmp_path / "demo"), "--fps", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    api = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        online, lines = 0, []
        while time.monotonic() - started < 30:
            time.sleep(1)
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "demo exited"
            try:
                gateways = _get(f"{api}/api/v1/gateways")
                lines = _get(f"{api}/api/v1/lines")
            except OSError:
                continue
            online = sum(1 for g in gateways if g["online"])
            if online == 3 and len(lines) == 3 and all(line["results"] > 0 for line in lines):
                break
        assert online == 3, f"{online}/3 gateways online after 30 s"
        assert sorted(line["line"] for line in lines) == ["line-1", "line-2", "line-3"]
        assert all(line["results"] > 0 for line in lines), lines
        # One gateway of each kind: anomaly model + notes on line-1, CNN on line-2, parcels on line-3.
        models = {g["id"]: {m["name"] for m in g["models"]} for g in gateways}
        assert models == {
            "gw-1": {"defect-patchcore", "notes-minilm"},
            "gw-2": {"defect-cnn"},
            "gw-3": {"parcel-detector"},
        }
        # The bundled models they run are in the registry (the console's Models page), pushed signed.
        registered: set[str] = set()
        while time.monotonic() - started < 60 and len(registered) < 4:
            registered = {m["name"] for m in _get(f"{api}/api/v1/models")}
            time.sleep(0.5)
        assert registered == {"defect-patchcore", "notes-minilm", "defect-cnn", "parcel-detector"}
        # ...and each line has its alert rule (the Alerts page; tests/simulators/test_demo_alerts.py).
        rules: list[tuple[str, str]] = []
        while time.monotonic() - started < 60 and len(rules) < 5:
            rules = sorted((r["line"], r["kind"]) for r in _get(f"{api}/api/v1/alert-rules"))
            time.sleep(0.5)
        assert rules == [("line-1", "defect_rate"), ("line-1", "model_drift"), ("line-2", "defect_rate"),
                         ("line-2", "model_drift"), ("line-3", "gateway_offline")]  # fmt: skip
        children = _children(proc.pid)
        assert len(children) >= 8, "broker, api, ingest and 3 x (camera + agent) should be running"
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0, output
    assert "factory-edge demo is running" in output
    leftovers = [pid for pid in children if Path(f"/proc/{pid}").exists()]
    assert not leftovers, f"processes left running after Ctrl-C: {leftovers}"
