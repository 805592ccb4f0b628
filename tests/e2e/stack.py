"""A whole platform in one test: broker, cloud ingest + API, and real edge agents on simulated frames."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def agent_config(
    gateway_id: str, broker_url: str, topics: TopicSpace, frames: Path, state_dir: Path, **outbox: Any
) -> dict[str, Any]:
    return {
        "gateway_id": gateway_id,
        "line": "line-e2e",
        "station": "inspect-1",
        "topic_root": topics.root,
        "state_dir": str(state_dir),
        "mqtt": {"url": broker_url, "reconnect_max_s": 2},
        "sources": [
            {"type": "folder", "name": "replay", "path": str(frames), "rate_fps": outbox.pop("fps", 0)}
        ],
        "models": [{"slot": "defect", "manifest": str(bundled_manifest())}],
        "runtime": {"threads": 1, "max_batch": 8, "max_wait_ms": 10},
        "outbox": {"batch_items": 20, "resend_after_s": 3, **outbox},
        "http": {"host": "127.0.0.1", "port": 0},
        "telemetry_interval_s": 1,
    }


@contextmanager
def running_agent(config: dict[str, Any]) -> Iterator[Agent]:
    agent = Agent(parse_config(config, "e2e"))
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def cloud_settings(
    db_url: str, broker_url: str, topics: TopicSpace, share_group: str | None
) -> CloudSettings:
    return CloudSettings(
        db_url=db_url,
        broker_url=broker_url,
        topic_root=topics.root,
        share_group=share_group,
        ingest_client_id=f"e2e-ingest-{uuid.uuid4().hex[:8]}",
        ingest_max_wait_ms=50,
        db_wait_s=5,
    )


def start_ingest(settings: CloudSettings) -> IngestWorker:
    worker = IngestWorker(settings).start()
    assert worker.wait_connected(15), "ingest worker did not connect"
    return worker


@contextmanager
def api_client(settings: CloudSettings) -> Iterator[TestClient]:
    migrate(settings.db_url)
    with TestClient(create_app(settings)) as client:
        yield client


def fetch_results(client: TestClient, gateway_id: str) -> list[dict[str, Any]]:
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


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
