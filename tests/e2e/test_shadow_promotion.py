"""Shadow -> gated promotion over a REAL agent and the real cloud, on Mosquitto + PostgreSQL and on
the demo's embedded broker + SQLite: the API starts a challenger, the agent verifies it and runs
it beside the serving model, its comparison records reach the cloud; a challenger that flags
everything is refused by its gates with the figures; one that agrees is promoted by a gated
rollout, swapped in on the gateway with no result lost or doubled; the champion's latency with
and without a challenger beside it is recorded."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.db.models import Result, Rollout
from cloud.factoryctl.push import push
from cloud.ingest.worker import IngestWorker
from cloud.ota.desired import MqttDesiredPublisher
from cloud.ota.desired_key import public_key_file
from cloud.ota.ticks import tick_all
from edge_agent.agent import Agent
from protocol.manifest import load_manifest
from protocol.signing import generate_private_key, public_key_pem, sign_manifest
from protocol.topics import TopicSpace
from simulators.net import free_port
from tests.support.agent import agent_config, write_frames
from tests.support.drift_teach import Backend, backend_named
from tests.support.e2e import api_server
from tests.support.mqtt import clear_session
from tests.support.ota_kit import BRIGHT, DARK, write_model
from tests.support.tokens import bearer, mint_tokens
from tests.support.waiting import wait_for

NAME = "defect-tiny"
GATEWAY = "gw-shadow"
COMPARED = 60  # frames each challenger must be compared on (the gates' min_frames)
GATES = {"min_frames": COMPARED, "max_flag_rate_shift": 0.05, "max_p95_ratio": None}


@pytest.fixture(params=["production", "embedded"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    production = request.param == "production"
    mosquitto = request.getfixturevalue("mosquitto") if production else None
    pg_url = request.getfixturevalue("pg_url") if production else None
    with backend_named(request.param, tmp_path, pg_url, mosquitto) as chosen:
        yield chosen


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_challenger_that_agrees_is_promoted_by_its_gates_and_one_that_flags_everything_is_refused(
    backend: Backend, tmp_path: Path, topic_space: TopicSpace, record_property: Any
) -> None:
    key = generate_private_key()
    trusted = tmp_path / "engineer.pub"
    trusted.write_bytes(public_key_pem(key.public_key()))
    champion = write_model(tmp_path / "v100", NAME, "1.0.0", bias=(5, -5))  # bright parts are scratches
    agrees = write_model(tmp_path / "v110", NAME, "1.1.0", bias=(5, -5), pad_bytes=7)
    flags_all = write_model(tmp_path / "v120", NAME, "1.2.0", bias=(-5, 5), pad_bytes=9)
    frames = tmp_path / "frames"
    write_frames(frames, [DARK, DARK, BRIGHT, DARK])

    port = free_port()
    settings = CloudSettings(
        db_url=backend.db_url, broker_url=backend.broker_url, topic_root=topic_space.root,
        share_group=backend.share_group, ingest_client_id=f"e2e-shadow-{uuid.uuid4().hex[:8]}",
        ingest_max_wait_ms=20, artifact_dir=str(tmp_path / "artifacts"), api_port=port,
        public_url=f"http://127.0.0.1:{port}",
    )  # fmt: skip
    migrate(settings.db_url)
    tokens = mint_tokens(settings.db_url)
    db = make_engine(settings.db_url)
    sessions = make_sessionmaker(db)
    broker = urlsplit(backend.broker_url)
    config = agent_config(
        tmp_path / "gw", (broker.hostname or "127.0.0.1", broker.port or 1883), topic_space, champion, frames,
        gateway_id=GATEWAY,
        sources=[{"type": "folder", "name": "replay", "path": str(frames), "loop": True, "rate_fps": 20}],
        ota={"enabled": True, "trusted_keys": [str(trusted)], "desired_keys": [str(public_key_file(settings))],
             "report_interval_s": 1},
        shadow={"budget_ms": 10_000, "max_backlog": None, "window_frames": 20},
    )  # fmt: skip
    worker = IngestWorker(settings).start()
    publisher = MqttDesiredPublisher(settings)
    agent = Agent(config)
    try:
        assert worker.wait_connected(15)
        with api_server(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
            http.headers.update(bearer(tokens["admin"]))
            for release in (champion, agrees, flags_all):
                manifest = load_manifest(release)
                push(http, release.parent / manifest.artifact, manifest, sign_manifest(manifest, key))
            agent.start()
            wait_for(lambda: _results(sessions) >= 40, 60, "the champion's results in the cloud")
            alone = _latencies(sessions, "1.0.0")

            # A challenger that flags every part: compared, then refused by its gates.
            _shadow(http, "1.2.0")
            flags_all_row = _compared(http, "1.2.0")
            beside = _latencies(sessions, "1.0.0", after=len(alone))
            refused = http.post("/api/v1/rollouts", json=_promotion("1.2.0"))
            assert refused.status_code == 422, refused.text
            assert "refused by its shadow gates" in refused.json()["detail"]
            assert f"{GATEWAY}: max_flag_rate_shift" in refused.json()["detail"]
            with sessions() as session:
                assert session.scalars(select(Rollout)).all() == []  # nothing planned
            stop = http.post(
                "/api/v1/shadow/stop", json={"slot": "defect", "target": {"gateways": [GATEWAY]}}
            )
            assert stop.status_code == 200, stop.text

            # One that agrees: compared, promoted by a gated rollout, swapped in on the gateway.
            _shadow(http, "1.1.0")
            agrees_row = _compared(http, "1.1.0")
            created = http.post("/api/v1/rollouts", json=_promotion("1.1.0"))
            assert created.status_code == 201, created.text
            rollout = created.json()
            assert [e["kind"] for e in rollout["events"]].count("shadow_gates") == 1
            deadline = time.monotonic() + 120
            while (
                _state(sessions, rollout["id"]) not in ("completed", "aborted")
                and time.monotonic() < deadline
            ):
                tick_all(sessions, settings, publisher)  # as Celery beat would
                time.sleep(0.5)
            assert _state(sessions, rollout["id"]) == "completed", rollout["id"]
            wait_for(lambda: agent.runners[0].manifest.version == "1.1.0", 30, "the challenger promoted")
            promoted_at = _results(sessions)
            wait_for(lambda: _results(sessions) >= promoted_at + 20, 30, "results of the new champion")
        agent.stop()
        wait_for(lambda: _results(sessions) == _seqs(sessions)[-1], 30, "every stored result ingested")
        seqs = _seqs(sessions)
        assert seqs == list(range(1, len(seqs) + 1)), "a result was lost or doubled"
        versions = _versions(sessions)
        switch = versions.index("1.1.0")
        assert set(versions[:switch]) == {"1.0.0"}  # one clean switch, in result order
        assert set(versions[switch:]) == {"1.1.0"}
        figures = {
            "stack": backend.name,
            "flags_all_compared": flags_all_row["compared"],
            "flags_all_agreement": round(flags_all_row["agreement"], 3),
            "flags_all_flag_rates": (
                flags_all_row["champion_flag_rate"],
                flags_all_row["challenger_flag_rate"],
            ),
            "refusal": refused.json()["detail"],
            "agrees_compared": agrees_row["compared"],
            "agrees_agreement": agrees_row["agreement"],
            "champion_p95_ms_alone": round(float(np.percentile(alone, 95)), 2),
            "champion_p95_ms_beside_challenger": round(float(np.percentile(beside, 95)), 2),
        }
        for name, value in figures.items():
            record_property(name, value)
        print("\nshadow-promotion figures:", figures)
        assert flags_all_row["challenger_flag_rate"] == 1.0
        assert agrees_row["agreement"] == 1.0
    finally:
        agent.stop()
        publisher.close()
        worker.stop()
        db.dispose()
        if backend.share_group is not None:
            host, port_ = urlsplit(backend.broker_url).hostname, urlsplit(backend.broker_url).port
            clear_session((host or "127.0.0.1", port_ or 1883), worker.client_id)


def _promotion(version: str) -> dict[str, Any]:
    return {"model_name": NAME, "version": version, "slot": "defect", "target": {"gateways": [GATEWAY]},
            "waves": "100%", "bake_s": 0, "gates": GATES}  # fmt: skip


def _shadow(http: httpx.Client, version: str) -> None:
    body = {"model_name": NAME, "version": version, "slot": "defect", "target": {"gateways": [GATEWAY]}}
    answer = http.post("/api/v1/shadow", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["published"], answer.text


def _compared(http: httpx.Client, version: str) -> dict[str, Any]:
    """The shadow status of ``version`` once it has been compared on COMPARED frames."""

    def row() -> dict[str, Any] | None:
        rows = http.get("/api/v1/shadow", params={"version": version}).json()
        return rows[0] if rows and rows[0]["compared"] >= COMPARED else None

    wait_for(lambda: row() is not None, 90, f"{version} compared on {COMPARED} frames")
    found = row()
    assert found is not None
    return found


def _results(sessions: Any) -> int:
    with sessions() as session:
        return len(session.scalars(select(Result.id).where(Result.gateway_id == GATEWAY)).all())


def _rows(sessions: Any) -> list[Any]:
    with sessions() as session:
        return list(session.execute(
            select(Result.seq, Result.model_version, Result.latency_ms)
            .where(Result.gateway_id == GATEWAY).order_by(Result.seq)
        ))  # fmt: skip


def _seqs(sessions: Any) -> list[int]:
    return [int(r.seq) for r in _rows(sessions)]


def _versions(sessions: Any) -> list[str]:
    return [str(r.model_version) for r in _rows(sessions)]


def _latencies(sessions: Any, version: str, after: int = 0) -> list[float]:
    return [float(r.latency_ms) for r in _rows(sessions)[after:] if r.model_version == version]


def _state(sessions: Any, rollout_id: str) -> str:
    with sessions() as session:
        row = session.get(Rollout, rollout_id)
        return "" if row is None else row.state
