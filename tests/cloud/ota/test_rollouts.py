"""Staged rollouts over 20 protocol-level virtual gateways on the real Mosquitto and database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bench.ota_fleet import VirtualFleet, wait_for
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.db.models import GatewayDesired, GatewayReported, Rollout, RolloutEvent
from cloud.ingest.worker import IngestWorker
from cloud.ota import rollouts as engine
from cloud.ota.desired import MqttDesiredPublisher
from cloud.ota.schemas import RolloutCreate, Target, Thresholds
from cloud.ota.ticks import tick_all
from protocol.topics import TopicSpace
from tests.support.releases import Release, make_release, register

GATEWAYS = [f"gw-{i:02d}" for i in range(20)]


@dataclass
class Plant:
    """The cloud side (settings, sessions, publisher) and the virtual fleet factory of one test."""

    settings: CloudSettings
    sessions: sessionmaker[Session]
    publisher: MqttDesiredPublisher
    old: Release
    new: Release
    start_fleet: Callable[..., VirtualFleet]

    def create(self, **overrides: object) -> str:
        req = RolloutCreate(
            model_name="defect-cnn",
            version=self.new.manifest.version,
            target=Target(gateways=GATEWAYS),
            waves="1,10%,50%,100%",
            bake_s=0,
            thresholds=Thresholds(max_error_rate=0.05, install_timeout_s=30),
        ).model_copy(update=overrides)
        with self.sessions.begin() as session:
            return engine.create_rollout(session, req, "test").id

    def state(self, rollout_id: str) -> Rollout:
        with self.sessions() as session:
            row = session.get(Rollout, rollout_id)
            assert row is not None
            return row

    def tick(self) -> None:
        tick_all(self.sessions, self.settings, self.publisher)

    def run_until(self, rollout_id: str, states: tuple[str, ...], timeout_s: float = 40) -> Rollout:
        wait_for(
            lambda: self.state(rollout_id).state in states, timeout_s, f"rollout to reach {states}", self.tick
        )
        return self.state(rollout_id)

    def events(self, rollout_id: str) -> list[str]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(RolloutEvent.kind)
                    .where(RolloutEvent.rollout_id == rollout_id)
                    .order_by(RolloutEvent.id)
                )
            )

    def abort_details(self, rollout_id: str) -> dict[str, str]:
        with self.sessions() as session:
            event = session.scalar(
                select(RolloutEvent).where(
                    RolloutEvent.rollout_id == rollout_id, RolloutEvent.kind == "aborted"
                )
            )
            assert event is not None
            return dict(event.details["gateways"])

    def reported_count(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(GatewayReported)) or 0


@pytest.fixture
def plant(
    cloud_settings: CloudSettings,
    start_worker: Callable[..., IngestWorker],
    mosquitto: tuple[str, int],
    topic_space: TopicSpace,
    tmp_path: Path,
) -> Iterator[Plant]:
    settings = cloud_settings.model_copy(update={"artifact_dir": str(tmp_path / "artifacts")})
    migrate(settings.db_url)
    key = Ed25519PrivateKey.generate()
    old, new = make_release(tmp_path / "old", "1.0", key), make_release(tmp_path / "new", "1.1", key)
    register(settings, old)
    register(settings, new)
    start_worker()
    db = make_engine(settings.db_url)
    publisher = MqttDesiredPublisher(settings)
    fleets: list[VirtualFleet] = []

    def start_fleet(gateway_ids: list[str] = GATEWAYS, **kwargs: object) -> VirtualFleet:
        fleet = VirtualFleet(mosquitto, topic_space, gateway_ids, old.ref, connections=5, **kwargs).start()  # type: ignore[arg-type]
        fleets.append(fleet)
        return fleet

    p = Plant(settings, make_sessionmaker(db), publisher, old, new, start_fleet)
    try:
        yield p
    finally:
        for fleet in fleets:
            fleet.stop()
        publisher.close()
        db.dispose()


def test_good_version_completes_every_wave(plant: Plant) -> None:
    fleet = plant.start_fleet()
    wait_for(lambda: plant.reported_count() == 20, 15, "ingest to store 20 reported states")
    rollout_id = plant.create()
    done = plant.run_until(rollout_id, ("completed", "aborted"))
    assert done.state == "completed", done.reason
    assert done.waves == [1, 2, 10, 20]
    wait_for(lambda: fleet.count_on("1.1") == 20, 10, "all 20 gateways on 1.1")
    assert plant.events(rollout_id).count("wave_started") == 4
    # Waves went out in order: the first gateway installed before any of the last wave.
    first = fleet.gateways[GATEWAYS[0]].installed_at["1.1"]
    assert all(fleet.gateways[g].installed_at["1.1"] >= first for g in GATEWAYS[10:])


def _assert_rolled_back(plant: Plant, fleet: VirtualFleet, rollout_id: str) -> None:
    row = plant.state(rollout_id)
    assert row.state == "aborted"
    assert row.reason
    assert "wave 1: 1/1 gateway(s) failed" in row.reason
    touched = [g for g, p in row.plan.items() if p.get("started")]
    assert touched == [GATEWAYS[0]]
    wait_for(lambda: fleet.count_on("1.0") == 20, 10, "every gateway back on 1.0")
    with plant.sessions() as session:
        desired = session.get(GatewayDesired, GATEWAYS[0])
        assert desired is not None
        offer = desired.document["slots"]["main"]
        assert (offer["manifest"]["version"], offer["allow_downgrade"]) == ("1.0", True)
        assert session.scalar(select(func.count()).select_from(GatewayDesired)) == 1
    assert all(not fleet.desired_seen[g] for g in GATEWAYS[1:]), "gateways beyond wave 1 were touched"
    assert plant.events(rollout_id)[-2:] == ["aborted", "rolled_back"]


def test_failing_installs_abort_in_the_first_wave_and_roll_back(plant: Plant) -> None:
    fleet = plant.start_fleet(fail_install=["1.1"])
    wait_for(lambda: plant.reported_count() == 20, 15, "ingest to store 20 reported states")
    rollout_id = plant.create()
    plant.run_until(rollout_id, ("completed", "aborted"))
    _assert_rolled_back(plant, fleet, rollout_id)
    # The abort names each failed gateway and the reason it reported.
    assert plant.abort_details(rollout_id) == {
        GATEWAYS[0]: "failed: smoke test of 1.1 failed: golden output mismatch"
    }


def test_bad_health_aborts_in_the_first_wave_and_the_gateway_returns_to_the_old_version(plant: Plant) -> None:
    fleet = plant.start_fleet(unhealthy=["1.1"])
    wait_for(lambda: plant.reported_count() == 20, 15, "ingest to store 20 reported states")
    rollout_id = plant.create()
    plant.run_until(rollout_id, ("completed", "aborted"))
    # The one gateway of wave 1 did run 1.1 before the health gate sent it back.
    assert "1.1" in fleet.gateways[GATEWAYS[0]].installed_at
    assert plant.abort_details(rollout_id)[GATEWAYS[0]].startswith("unhealthy: error rate 0.240 > 0.05")
    _assert_rolled_back(plant, fleet, rollout_id)


def test_paused_rollout_holds_its_wave_until_resumed(plant: Plant) -> None:
    fleet = plant.start_fleet()
    wait_for(lambda: plant.reported_count() == 20, 15, "ingest to store 20 reported states")
    rollout_id = plant.create(waves="1,100%", bake_s=0.5)
    wait_for(lambda: fleet.count_on("1.1") == 1, 15, "wave 1 installed", plant.tick)
    with plant.sessions.begin() as session:
        row = session.get(Rollout, rollout_id)
        assert row is not None
        engine.pause(session, row, "operator-1")
    for _ in range(10):
        plant.tick()
    assert plant.state(rollout_id).state == "paused"
    assert fleet.count_on("1.1") == 1
    with plant.sessions.begin() as session:
        row = session.get(Rollout, rollout_id)
        assert row is not None
        engine.resume(session, row, "operator-1")
    assert plant.run_until(rollout_id, ("completed", "aborted")).state == "completed"
    wait_for(lambda: fleet.count_on("1.1") == 20, 10, "all 20 gateways on 1.1")
    assert [k for k in plant.events(rollout_id) if k in ("paused", "resumed")] == ["paused", "resumed"]


def test_desired_state_lost_after_commit_is_published_again(plant: Plant) -> None:
    fleet = plant.start_fleet()
    wait_for(lambda: plant.reported_count() == 20, 15, "ingest to store 20 reported states")
    rollout_id = plant.create(waves="1,100%", thresholds=Thresholds(install_timeout_s=600))
    with plant.sessions.begin() as session:
        row = session.get(Rollout, rollout_id)
        assert row is not None
        lost = engine.advance(session, plant.settings, row)  # committed, then the publish "fails"
        assert [s.gateway_id for s in lost] == [GATEWAYS[0]]
        assert engine.advance(session, plant.settings, row) == []  # too early to resend
        started = row.wave_started_at
        assert started is not None
        again = engine.advance(session, plant.settings, row, now=started + timedelta(seconds=31))
    assert again == lost  # the same revision: gateways that did get it ignore the copy
    plant.publisher.publish(again)
    wait_for(lambda: fleet.count_on("1.1") == 1, 10, "the gateway to install from the resent state")
    assert "republished" in plant.events(rollout_id)


def test_gateway_offline_during_its_wave_converges_when_it_returns(plant: Plant) -> None:
    first = plant.start_fleet([GATEWAYS[0]])
    others = plant.start_fleet(GATEWAYS[1:])
    wait_for(lambda: plant.reported_count() == 20, 15, "ingest to store 20 reported states")
    first.stop()  # the wave-1 gateway goes offline before the rollout starts
    rollout_id = plant.create(waves="1,100%", thresholds=Thresholds(install_timeout_s=600))
    for _ in range(3):
        plant.tick()
    assert plant.state(rollout_id).wave == 0  # waiting for it, not failing it
    # Back online with no memory of the rollout: the retained desired state is waiting on the broker.
    plant.start_fleet([GATEWAYS[0]])
    assert plant.run_until(rollout_id, ("completed", "aborted")).state == "completed"
    wait_for(lambda: others.count_on("1.1") == 19, 10, "the other 19 gateways on 1.1")
