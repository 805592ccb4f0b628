"""A whole platform in one test: broker, cloud ingest + API, and real edge agents on simulated frames.

:class:`Stack` is one test's set-up (its folder and topic root bound once): the frames with their
ground truth, the cloud's settings, the API, ingest workers and agents reading those frames.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.db import migrate
from cloud.ingest.worker import IngestWorker
from edge_agent.agent import Agent
from edge_agent.config import parse_config
from protocol.topics import TopicSpace
from simulators.camera_line import CameraLine, CameraLineConfig
from simulators.fleet import bundled_manifest
from simulators.writers import write_frames
from tests.support.testclient import TestClient
from tests.support.waiting import wait_for


@dataclass(frozen=True)
class Truth:
    """Ground truth of the frames written for a test, keyed by file name."""

    labels: dict[str, str]

    @classmethod
    def write(cls, folder: Path, count: int, seed: int, defect_rate: float = 0.5) -> Truth:
        line = CameraLine(CameraLineConfig(seed=seed, defect_rate=defect_rate))
        labels_path = write_frames(line, folder, count)
        rows = [json.loads(row) for row in labels_path.read_text().splitlines()]
        return cls({row["file"]: row["label"] for row in rows})


@dataclass(frozen=True)
class Stack:
    """One test's platform: frames under ``folder / "frames"``, the gateway's state in
    ``folder / "gw"``, everything on the topic root ``topics``."""

    folder: Path
    topics: TopicSpace

    @property
    def frames_dir(self) -> Path:
        return self.folder / "frames"

    @property
    def gateway_dir(self) -> Path:
        """The agent's state dir (its outbox database lives here)."""
        return self.folder / "gw"

    def frames(self, count: int, seed: int) -> Truth:
        """Write ``count`` camera frames where the agent reads them; their ground truth."""
        return Truth.write(self.frames_dir, count, seed)

    def agent_config(self, gateway_id: str, broker_url: str, **outbox: Any) -> dict[str, Any]:
        """An agent replaying the frames through the bundled model; ``fps`` and outbox settings
        may be given (``fps=0``: as fast as the model takes them)."""
        fps = outbox.pop("fps", 0)
        return {
            "gateway_id": gateway_id,
            "line": "line-e2e",
            "station": "inspect-1",
            "topic_root": self.topics.root,
            "state_dir": str(self.gateway_dir),
            "mqtt": {"url": broker_url, "reconnect_max_s": 2},
            "sources": [{"type": "folder", "name": "replay", "path": str(self.frames_dir), "rate_fps": fps}],
            "models": [{"slot": "defect", "manifest": str(bundled_manifest())}],
            "runtime": {"threads": 1, "max_batch": 8, "max_wait_ms": 10},
            "outbox": {"batch_items": 20, "resend_after_s": 3, **outbox},
            "http": {"host": "127.0.0.1", "port": 0},
            "telemetry_interval_s": 1,
        }

    def cloud(self, db_url: str, broker_url: str, share_group: str | None) -> CloudSettings:
        """The cloud's settings: a fresh ingest client id each time, short batching waits."""
        return CloudSettings(
            db_url=db_url,
            broker_url=broker_url,
            topic_root=self.topics.root,
            share_group=share_group,
            ingest_client_id=f"e2e-ingest-{uuid.uuid4().hex[:8]}",
            ingest_max_wait_ms=50,
            db_wait_s=5,
        )

    @staticmethod
    @contextmanager
    def agent(config: dict[str, Any]) -> Iterator[Agent]:
        """A started agent, stopped on leaving."""
        agent = Agent(parse_config(config, "e2e"))
        agent.start()
        try:
            yield agent
        finally:
            agent.stop()

    @staticmethod
    def ingest(settings: CloudSettings) -> IngestWorker:
        """A started ingest worker, subscribed (the caller stops it)."""
        worker = IngestWorker(settings).start()
        assert worker.wait_connected(15), "ingest worker did not connect"
        return worker

    @staticmethod
    @contextmanager
    def api(settings: CloudSettings) -> Iterator[TestClient]:
        """The API on the migrated database."""
        migrate(settings.db_url)
        with TestClient(create_app(settings)) as client:
            yield client

    @staticmethod
    def results(client: TestClient, gateway_id: str) -> list[dict[str, Any]]:
        """Every stored result of ``gateway_id``, following the API's pagination."""
        items: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            response = client.get(
                "/api/v1/results", params={"gateway": gateway_id, "limit": 1000, "offset": offset}
            )
            assert response.status_code == 200, response.text
            page = response.json()
            items.extend(page["items"])
            offset = page["next_offset"]
        return items


@contextmanager
def api_server(settings: CloudSettings) -> Iterator[str]:
    """The cloud API on a real port: gateways download artifacts from it over HTTP."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.api_port, log_config=None)
    )
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    wait_for(lambda: server.started, 20, "the API to start")
    try:
        yield f"http://127.0.0.1:{settings.api_port}"
    finally:
        server.should_exit = True
        thread.join(10)
