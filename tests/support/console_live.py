"""The live console for its tests: the app on a seeded database with a release to roll out, gateways
reporting, and reading SSE streams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.api import create_app
from cloud.config import CloudSettings
from protocol.messages import WireModel
from protocol.ota import SlotHealth
from protocol.topics import Channel, TopicSpace
from tests.support.console import PASSWORD, Seeded, seed_console
from tests.support.messages import ingest, reported
from tests.support.releases import RecordingPublisher, make_release, register, tick
from tests.support.testclient import TestClient
from tests.support.tokens import bearer

BEFORE = SlotHealth(inferences=200, errors=0, p95_latency_ms=40.0, defect_rate=0.1, mean_confidence=0.9)


@dataclass
class Live:
    """The app under test, its database and what was seeded."""

    client: TestClient
    settings: CloudSettings
    topics: TopicSpace
    seeded: Seeded
    publisher: RecordingPublisher

    def ingest(self, gateway_id: str, channel: Channel, msg: WireModel) -> None:
        """Feed one message through the ingest path, as a gateway's would arrive."""
        ingest(self.settings.db_url, self.topics, gateway_id, channel, msg)

    def report(self, gateway_id: str, version: str, revision: int, health: SlotHealth, phase: str) -> None:
        """``gateway_id`` reports what its 'main' slot runs and how it does."""
        self.ingest(gateway_id, Channel.REPORTED, reported(gateway_id, version, revision, health, phase))

    def tick(self) -> None:
        """One beat of the rollout engine."""
        tick(self.settings, self.publisher)

    def token(self, user: str) -> dict[str, str]:
        answer = self.client.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        return bearer(answer.json()["token"])

    def create(self, **body: Any) -> str:
        request = {"model_name": "defect-cnn", "version": "1.1", "target": {"gateways": ["gw-a"]}, "waves": "100%",
                   "bake_s": 600, **body}  # fmt: skip
        answer = self.client.post("/api/v1/rollouts", json=request, headers=self.token("ada"))
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])


@contextmanager
def running_live(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Live]:
    """The API and console on a database seeded by :func:`seed_console`, plus a version 1.1 to roll out."""
    settings = CloudSettings(db_url=db_url, artifact_dir=str(tmp_path / "artifacts"))
    key = Ed25519PrivateKey.generate()
    seeded = seed_console(settings, topic_space, key, tmp_path / "release")
    register(settings, make_release(tmp_path / "new", "1.1", key))
    publisher = RecordingPublisher()
    with TestClient(create_app(settings, publisher)) as client:
        yield Live(client, settings, topic_space, seeded, publisher)


def events_of(text: str) -> list[tuple[str, Any]]:
    """(event, data) of each SSE event in ``text``; comments (idle ticks) come as ('', None)."""
    out: list[tuple[str, Any]] = []
    for chunk in (c for c in text.split("\n\n") if c):
        if chunk.startswith(":"):
            out.append(("", None))
            continue
        kind, data = chunk.split("\n")
        out.append((kind.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def read_event(lines: Iterator[str]) -> tuple[str, Any]:
    """The next event of an open stream (skipping idle comments)."""
    kind = ""
    for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            return kind, json.loads(line.removeprefix("data: "))
    raise AssertionError("the stream ended")


FULL_FORM = {
    "model_name": "defect-cnn", "version": "1.1", "slot": "main", "line": "line-1", "site": "", "tags": "",
    "gateways": "gw-b", "waves": "1,100%", "bake_s": "30", "max_failure_ratio": "0.5", "max_error_rate": "0.02",
    "max_p95_latency_ms": "150", "max_defect_rate_shift": "", "max_confidence_drop": "0.1", "min_inferences": "20",
    "install_timeout_s": "300",
}  # fmt: skip


def report_installed(live: Live, rollout: str) -> None:
    """gw-a installs the rollout's version healthily and the engine sees it (the bake starts)."""
    live.report("gw-a", "1.1", live.publisher.published[-1].revision, BEFORE, "committed")
    live.tick()
