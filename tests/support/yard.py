"""A yard of gateways fed through the real ingest path, and the rollout API over the real database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.factoryctl import cli as factoryctl
from protocol.messages import GatewayState, LoadedModel, MachineInfo, WireModel
from protocol.ota import SlotHealth
from protocol.topics import Channel, TopicSpace
from tests.support.machines import GATEWAY_MACHINE
from tests.support.messages import SHA, ingest, reported
from tests.support.releases import RecordingPublisher, make_release, register, tick
from tests.support.testclient import TestClient
from tests.support.tokens import bearer, mint_tokens

HEALTHY = SlotHealth(inferences=100, errors=0, p95_latency_ms=30.0, defect_rate=0.1, mean_confidence=0.9)


def loaded(name: str, slot: str, task: str, version: str = "1.0") -> LoadedModel:
    """A model a gateway's birth says it runs in ``slot``."""
    return LoadedModel(name=name, version=version, sha256=SHA, slot=slot, task=task)


@dataclass
class Yard:
    """The API, its database and a way to make gateways speak."""

    client: TestClient
    settings: CloudSettings
    topics: TopicSpace
    admin: dict[str, str]
    publisher: RecordingPublisher
    workdir: Path

    def _ingest(self, gateway_id: str, channel: Channel, msg: WireModel) -> None:
        ingest(self.settings.db_url, self.topics, gateway_id, channel, msg)

    def ctl(self, *argv: str) -> int:
        """``factoryctl ARGV`` as the admin against this API, in-process; returns its exit code."""
        env = {
            "FACTORYCTL_CONFIG": str(self.workdir / "ctl" / "config.json"),
            "FACTORY_API_URL": "http://testserver",
            "FACTORY_API_TOKEN": self.admin["Authorization"].removeprefix("Bearer "),
        }
        return factoryctl.main(list(argv), environ=env, client=self.client)

    def birth(self, gateway_id: str, *models: LoadedModel, machine: MachineInfo = GATEWAY_MACHINE) -> None:
        """``gateway_id`` connects, saying which models it runs in which slot (and on what machine)."""
        msg = GatewayState(
            gateway_id=gateway_id,
            online=True,
            session=1,
            agent_version="0.1.0",
            line="line-1",
            models=models,
            timestamp=datetime.now(UTC),
            machine=machine,
        )
        self._ingest(gateway_id, Channel.STATE, msg)

    def report(
        self,
        gateway_id: str,
        version: str,
        revision: int,
        phase: str = "committed",
        slot: str = "main",
        error: str | None = None,
        health: SlotHealth = HEALTHY,
    ) -> None:
        """``gateway_id`` reports ``slot`` running defect-cnn ``version`` in ``phase`` with ``health``."""
        msg = reported(gateway_id, version, revision, health, phase, slot, error)
        self._ingest(gateway_id, Channel.REPORTED, msg)

    def tick(self) -> None:
        """One beat of the rollout engine."""
        tick(self.settings, self.publisher)

    def revision(self, gateway_id: str) -> int:
        """The revision of the last desired state published to ``gateway_id``."""
        return [s for s in self.publisher.published if s.gateway_id == gateway_id][-1].revision

    def post(self, **body: Any) -> httpx.Response:
        request = {"model_name": "defect-cnn", "version": "1.1", "target": {"gateways": ["gw-1"]},
                   "waves": "100%", "bake_s": 0, **body}  # fmt: skip
        return self.client.post("/api/v1/rollouts", json=request, headers=self.admin)

    def create(self, **body: Any) -> dict[str, Any]:
        answer = self.post(**body)
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created

    def get(self, rollout_id: str) -> dict[str, Any]:
        answer = self.client.get(f"/api/v1/rollouts/{rollout_id}", headers=self.admin)
        assert answer.status_code == 200, answer.text
        got: dict[str, Any] = answer.json()
        return got

    def listed(self, rollout_id: str) -> dict[str, Any]:
        rows = self.client.get("/api/v1/rollouts", headers=self.admin).json()
        row: dict[str, Any] = next(r for r in rows if r["id"] == rollout_id)
        return row

    def act(self, rollout_id: str, action: str) -> None:
        answer = self.client.post(f"/api/v1/rollouts/{rollout_id}/{action}", json={}, headers=self.admin)
        assert answer.status_code == 200, answer.text


@contextmanager
def running_yard(db_url: str, tmp_path: Path, topics: TopicSpace) -> Iterator[Yard]:
    """The API on a fresh database with defect-cnn 1.0 and 1.1 (task defect) registered."""
    settings = CloudSettings(db_url=db_url, artifact_dir=str(tmp_path / "artifacts"))
    admin = mint_tokens(db_url)["admin"]  # also migrates
    key = Ed25519PrivateKey.generate()
    register(settings, make_release(tmp_path / "old", "1.0", key))
    register(settings, make_release(tmp_path / "new", "1.1", key))
    register(settings, make_release(tmp_path / "other", "2.0", key, name="scratch-net"))
    publisher = RecordingPublisher()
    with TestClient(create_app(settings, publisher)) as client:
        yield Yard(client, settings, topics, bearer(admin), publisher, tmp_path)
