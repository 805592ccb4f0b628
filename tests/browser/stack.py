"""A real cloud stack for browser tests: uvicorn on a free port, the ingest worker, three fed lines."""

from __future__ import annotations

import base64
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.api import create_app
from cloud.auth.service import Role, create_user
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.ingest.worker import IngestWorker
from edge_agent.thumbnails import ThumbnailConfig, encode_thumbnail
from protocol.messages import Box, DefectOutput
from protocol.topics import Channel, TopicSpace
from tests.cloud.helpers import Publisher, batch, clear_session, item, new_stream, state, telemetry
from tests.cloud.ota_helpers import RecordingPublisher, make_release, register

LINES = ("line-a", "line-b", "line-c")
PASSWORD = "browser-pass-1"  # noqa: S105 - test users only
USERS = {"vera": Role.viewer, "otto": Role.operator, "ada": Role.admin}
FEED_EVERY_S = 0.5


@dataclass(frozen=True)
class Stack:
    """A running stack: its base URL and settings."""

    url: str
    settings: CloudSettings

    def api_token(self, user: str) -> str:
        """A fresh API token of ``user`` (as factoryctl would get one)."""
        answer = httpx.post(f"{self.url}/api/v1/auth/login", json={"username": user, "password": PASSWORD})
        answer.raise_for_status()
        token: str = answer.json()["token"]
        return token


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _thumbnail(rng: np.random.Generator, box: Box) -> str:
    frame = rng.integers(60, 120, size=(240, 320, 3), dtype=np.uint8)
    frame[box.y : box.y + box.h, box.x : box.x + box.w] = (30, 30, 220)  # the "defect", red in BGR
    jpeg = encode_thumbnail(frame, box, ThumbnailConfig())
    assert jpeg is not None
    return base64.b64encode(jpeg).decode()


def _feed(publisher: Publisher, stop: threading.Event) -> None:
    """Three lines' gateways: a birth and telemetry, then a small batch per line every tick."""
    rng = np.random.default_rng(7)
    stream = new_stream()
    for n, line in enumerate(LINES):
        gw = f"gw-{line[-1]}1"
        publisher.publish(gw, Channel.STATE, state(gw, True, 1, line=line))
        publisher.publish(gw, Channel.TELEMETRY, telemetry(gw, inferences=10 * (n + 1)))
    seq = 0
    while not stop.is_set():
        for line in LINES:
            items = []
            for _ in range(3):
                seq += 1
                defect = rng.random() < 0.3
                it = item(
                    seq, line=line, at=datetime.now(UTC), defect=defect, label="scratch" if defect else None
                )
                if defect:
                    box = Box(x=int(rng.integers(20, 200)), y=int(rng.integers(20, 150)), w=40, h=30)
                    output = DefectOutput(label="scratch", is_defect=True, score=0.9, box=box)
                    it = it.model_copy(update={"output": output, "thumbnail_jpeg": _thumbnail(rng, box)})
                items.append(it)
            publisher.publish(f"gw-{line[-1]}1", Channel.RESULTS, batch(f"gw-{line[-1]}1", stream, items))
        stop.wait(FEED_EVERY_S)


@contextmanager
def running_stack(db_url: str, broker: tuple[str, int], tmp_path: Path) -> Iterator[Stack]:
    """Start API + console, ingest worker and the feeder; stop them all afterwards."""
    topics = TopicSpace(f"test-{uuid.uuid4().hex[:10]}/factory/v1")
    settings = CloudSettings(
        db_url=db_url,
        broker_url=f"mqtt://{broker[0]}:{broker[1]}",
        topic_root=topics.root,
        share_group=None,
        ingest_client_id=f"test-ingest-{uuid.uuid4().hex[:10]}",
        ingest_max_wait_ms=50,
        db_wait_s=5,
        artifact_dir=str(tmp_path / "artifacts"),
    )
    migrate(db_url)
    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as session:
        for name, role in USERS.items():
            create_user(session, name, PASSWORD, role)
    engine.dispose()
    register(settings, make_release(tmp_path / "release", "1.0", Ed25519PrivateKey.generate()))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, RecordingPublisher()), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    api = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    api.start()
    deadline = time.monotonic() + 20
    # The worker migrates too; alembic is not thread-safe, so it starts after the API's migration.
    while not server.started:
        if time.monotonic() > deadline or not api.is_alive():
            server.should_exit = True
            raise AssertionError("uvicorn did not start")
        time.sleep(0.05)
    worker = IngestWorker(settings).start()
    publisher = Publisher(broker, topics)
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(publisher, stop), name="feeder", daemon=True)
    try:
        assert worker.wait_connected(10), "ingest worker did not connect to Mosquitto"
        feeder.start()
        yield Stack(f"http://127.0.0.1:{port}", settings)
    finally:
        stop.set()
        if feeder.is_alive():
            feeder.join(10)
        publisher.close()
        worker.stop()
        clear_session(broker, worker.client_id)
        server.should_exit = True
        api.join(15)
