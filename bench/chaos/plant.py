"""A whole plant of real processes for one fault: broker, PostgreSQL, ingest worker(s) and one edge
agent replaying a camera line; and the tally of what the agent sent against what the cloud stored."""

from __future__ import annotations

import sqlite3
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import psycopg

from bench.chaos.partition import SilentPartition
from bench.chaos.processes import Broker, Postgres, Process, agent_process, ingest_process, outbox_depth
from edge_agent.outbox import Outbox
from simulators.camera_line import CameraLine, CameraLineConfig
from simulators.fleet import bundled_manifest
from simulators.net import console_script

GATEWAY = "gw-chaos"
FRAMES = 24


@dataclass
class Row:
    """One fault's line of the table."""

    fault: str
    reps: int
    sent: int = 0
    stored: int = 0
    lost: int = 0
    doubled: int = 0
    recovery_s: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def kept(self) -> bool:
        """Nothing lost, nothing doubled, and the fault hit a stream that was moving."""
        return self.lost == 0 and self.doubled == 0 and self.sent > 0


class Plant:
    """Broker, PostgreSQL, ``ingest_workers`` ingest processes and one agent, in ``folder``."""

    def __init__(
        self,
        folder: Path,
        ingest_workers: int = 1,
        fps: float = 30.0,
        partitionable: bool = False,
        state_disk_mb: int | None = None,
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        # A disk of its own for the agent's state (the outbox), small enough to fill for real.
        self.state_disk = folder / "state" if state_disk_mb else None
        if self.state_disk is not None:
            self.state_disk.mkdir()
            mount = ["mount", "-t", "tmpfs", "-o", f"size={state_disk_mb}m", "tmpfs", str(self.state_disk)]
            subprocess.run(mount, check=True, capture_output=True)  # noqa: S603
            self.state_disk_mb = state_disk_mb
        self.topic_root = f"chaos-{uuid.uuid4().hex[:8]}/factory/v1"
        self.broker = Broker(folder)
        self.postgres = Postgres()
        self.frames = folder / "frames"
        self._write_frames()
        self.ingests = [self._ingest(str(n)) for n in range(ingest_workers)]
        # The gateway's side of the network, which a fault may partition silently.
        self.partition = SilentPartition(("127.0.0.1", self.broker.port)) if partitionable else None
        agent_broker = f"mqtt://127.0.0.1:{self.partition.port}" if self.partition else self.broker.url
        self.config: dict[str, Any] = {
            "gateway_id": GATEWAY,
            "line": "line-chaos",
            "topic_root": self.topic_root,
            "state_dir": str(folder / "state"),
            "mqtt": {"url": agent_broker, "keepalive_s": 5, "publish_timeout_s": 5},
            "sources": [
                {"type": "folder", "name": "cam", "path": str(self.frames), "loop": True, "rate_fps": fps}
            ],
            "models": [{"slot": "defect", "manifest": str(bundled_manifest()), "sources": ["cam"]}],
            "runtime": {"threads": 1, "max_batch": 4, "max_wait_ms": 10},
            "outbox": {"batch_items": 10, "resend_after_s": 1.0},
            "telemetry_interval_s": 5,
        }
        self.agent, self.metrics_port = agent_process(folder, self.config)

    def _ingest(self, name: str) -> Process:
        return ingest_process(self.folder, name, self.postgres.url, self.broker.url, self.topic_root)

    def _write_frames(self) -> None:
        self.frames.mkdir()
        line = CameraLine(CameraLineConfig(seed=4242, width=320, height=240))
        for n in range(FRAMES):
            cv2.imwrite(str(self.frames / f"{n:04d}.png"), line.frame(n).image)

    @property
    def outbox_path(self) -> Path:
        return self.folder / "state" / "outbox.db"

    def start(self) -> None:
        self.broker.start()
        self.postgres.start()
        migrated = subprocess.run(  # noqa: S603 - our own console script
            [console_script("factory-cloud"), "migrate", "--db", self.postgres.url],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if migrated.returncode != 0:
            raise RuntimeError(f"migration failed: {migrated.stdout[-2000:]}")
        for ingest in self.ingests:
            ingest.start()
        self.agent.start()

    def highest_stored(self) -> int:
        """The highest result seq stored for the gateway (0 before any, or while the DB is down)."""
        try:
            with psycopg.connect(self._dsn, connect_timeout=2) as conn:
                row = conn.execute(
                    "SELECT max(seq) FROM results WHERE gateway_id = %s", (GATEWAY,)
                ).fetchone()
        except psycopg.Error:
            return 0
        return int(row[0] or 0) if row else 0

    def wait_stored_beyond(self, seq: int, timeout_s: float = 120.0) -> float:
        """Seconds until a result above ``seq`` is stored; RuntimeError after ``timeout_s``."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.highest_stored() > seq:
                return time.monotonic() - started
            time.sleep(0.05)
        raise RuntimeError(f"no result above seq {seq} stored within {timeout_s} s (logs in {self.folder})")

    @property
    def _dsn(self) -> str:
        return f"host=127.0.0.1 port={self.postgres.port} user=postgres dbname=postgres"

    def last_assigned(self) -> int:
        """The highest result seq the agent has committed to its outbox (read-only, while it runs)."""
        with sqlite3.connect(f"file:{self.outbox_path}?mode=ro", uri=True, timeout=10) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'result_next_seq'").fetchone()
        return int(row[0]) - 1 if row else 0

    def outbox_integrity(self) -> str:
        """SQLite's integrity_check of the outbox file (the agent must not be running)."""
        with sqlite3.connect(self.outbox_path) as db:
            return "; ".join(str(r[0]) for r in db.execute("PRAGMA integrity_check"))

    def drain_and_tally(self, row: Row, timeout_s: float = 180.0) -> Row:
        """Empty the line, let the agent deliver all it holds, stop everything, count."""
        self.agent.stop()
        for frame in self.frames.iterdir():
            frame.unlink()  # the line stops: what the agent holds is all there will be
        for ingest in self.ingests:
            if not ingest.running:
                ingest.start()
        self.agent.start()
        deadline = time.monotonic() + timeout_s
        while outbox_depth(self.metrics_port) != 0.0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the outbox did not drain within {timeout_s} s (logs in {self.folder})")
            time.sleep(0.2)
        self.agent.stop()
        outbox = Outbox(self.outbox_path, 1 << 40)
        stream, sent = outbox.results.stream, outbox.results.last_seq
        outbox.close()
        with psycopg.connect(self._dsn) as conn:
            total, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT seq) FROM results WHERE gateway_id = %s AND stream = %s"
                " AND seq <= %s",
                (GATEWAY, stream, sent),
            ).fetchone() or (0, 0)
        row.sent, row.stored = sent, int(total)
        row.lost, row.doubled = sent - int(distinct), int(total) - int(distinct)
        return row

    def fill_state_disk(self) -> Path:
        """Write a file on the agent's state disk until the disk is full; the file, to delete."""
        assert self.state_disk is not None
        filler = self.state_disk / "filler"
        chunk = b"\0" * (1 << 20)
        with filler.open("wb") as fh:
            try:
                while True:
                    fh.write(chunk)
                    fh.flush()
            except OSError:  # ENOSPC: full to the last block
                pass
        return filler

    def close(self) -> None:
        self.agent.stop()
        if self.partition is not None:
            self.partition.close()
        for ingest in self.ingests:
            ingest.stop()
        self.broker.stop()
        self.postgres.remove()
        if self.state_disk is not None:
            subprocess.run(["umount", "-l", str(self.state_disk)], check=False, capture_output=True)  # noqa: S603, S607
