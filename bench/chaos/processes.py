"""The processes a chaos run kills: a private Mosquitto, a private PostgreSQL cluster, edge agents
and ingest workers, each a real OS process started from our console scripts."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from simulators.net import console_script, free_port


def wait_port(port: int, what: str, timeout_s: float = 20.0) -> None:
    """Until something listens on 127.0.0.1:``port``; RuntimeError naming ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout_s} s")


class Process:
    """One child process, killed with SIGKILL or stopped with SIGTERM; its output in ``log``."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name, self.argv, self.log, self.env = name, argv, log, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own console scripts and Debian's servers
                self.argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(self.env or {})}
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()


class Broker(Process):
    """Mosquitto with persistence on, as in production, on a port of its own."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        conf = folder / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder}/\nautosave_interval 60\n"
        )
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        super().__init__("broker", [binary, "-c", str(conf)], folder / "broker.log")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        wait_port(self.port, "mosquitto")


class Postgres:
    """A PostgreSQL cluster of the run's own, run as the postgres user (the server refuses root).

    Its data lives in a folder of its own under the system temp dir, since the postgres user
    cannot enter root's private temp folders (pytest's); :meth:`remove` deletes it.
    """

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        self.data = self.root / "pgdata"
        self.port = free_port()
        self.log = self.root / "postgres.log"
        self.data.mkdir()
        self.log.touch()
        for path in (self.root, self.data, self.log):
            shutil.chown(path, "postgres", "postgres")
        self._as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _as_postgres(self, *argv: str) -> None:
        tool = shutil.which(argv[0]) or argv[0]
        done = subprocess.run(  # noqa: S603 - Debian's PostgreSQL tools
            ["runuser", "-u", "postgres", "--", tool, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} exited {done.returncode}: {(done.stderr or done.stdout)[-1500:]}")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._as_postgres("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def restart_immediate(self) -> None:
        """``pg_ctl restart -m immediate``: the server quits without a checkpoint, then recovers."""
        # -l: the new server writes there, not into a pipe this call would then wait on for ever.
        self._as_postgres(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "immediate", "-w", "restart"
        )

    def stop(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        """Stop the server if it runs and delete its folder."""
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def agent_process(folder: Path, config: dict[str, Any]) -> tuple[Process, int]:
    """An ``edge-agent`` on ``config`` (written to ``folder``); also the port of its /metrics."""
    port = free_port()
    config = {**config, "http": {"host": "127.0.0.1", "port": port}}
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    argv = [sys.executable, "-m", "edge_agent.main", "--config", str(path), "--log-level", "WARNING"]
    return Process("agent", argv, folder / "agent.log"), port


def outbox_depth(port: int) -> float | None:
    """The agent's ``outbox_depth`` gauge from its /metrics, None while it does not answer."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith("outbox_depth "):
            return float(line.split()[1])
    return None


def ingest_process(folder: Path, name: str, db_url: str, broker_url: str, topic_root: str) -> Process:
    """A ``factory-cloud ingest`` worker in the shared subscription ``chaos``."""
    argv = [
        console_script("factory-cloud"), "ingest", "--db", db_url, "--broker", broker_url,
        "--topic-root", topic_root, "--share-group", "chaos", "--ingest-client-id", f"chaos-{name}",
        "--ingest-session-expiry-s", "5",
    ]  # fmt: skip
    return Process(f"ingest {name}", argv, folder / f"ingest-{name}.log", {"FACTORY_LOG_LEVEL": "WARNING"})
