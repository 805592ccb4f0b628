"""Captures end to end: the API asks a REAL agent (on Mosquitto, with ingest and the API on
PostgreSQL) for 20 frames; the gateway captures them losslessly and uploads them; the cloud keeps
them as a dataset whose every file has the right hash. And the fault: the cloud goes away while
the gateway captures and comes back; the upload completes with nothing lost or doubled."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from cloud.config import CloudSettings
from edge_agent.agent import Agent
from simulators.net import free_port
from tests.support.captures import ApiServer, mint_gateway_token, serving
from tests.support.e2e import Stack
from tests.support.mqtt import clear_session
from tests.support.tokens import bearer, mint_tokens
from tests.support.waiting import wait_for

GATEWAY = "gw-cap"
FRAMES = 20


@dataclass
class Plant:
    """The cloud (API on a real port, ingest) and what the test holds of it."""

    api: ApiServer
    settings: CloudSettings
    tokens: dict[str, str]

    def call(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        answer = httpx.request(method, f"{self.api.url}/api/v1{path}", headers=bearer(self.tokens["operator"]),
                               timeout=30, **kwargs)  # fmt: skip
        assert answer.status_code == status, answer.text
        return answer.json()

    def capture(self) -> str:
        [made] = self.call("POST", "/captures", 201, json={"gateway": GATEWAY, "slot": "defect", "frames": FRAMES,
                                                            "label": "good", "note": "e2e"})  # fmt: skip
        return str(made["id"])

    def status(self, capture_id: str) -> str:
        return str(self.call("GET", f"/captures/{capture_id}")["status"])

    def born(self) -> bool:
        answer = httpx.get(f"{self.api.url}/api/v1/gateways/{GATEWAY}", timeout=10)
        return answer.status_code == 200 and bool(answer.json().get("models"))


@pytest.fixture
def plant(stack: Stack, pg_url: str, mosquitto: tuple[str, int]) -> Iterator[Plant]:
    host, port = mosquitto
    settings = stack.cloud(pg_url, f"mqtt://{host}:{port}", None).model_copy(
        update={"api_port": free_port(), "artifact_dir": str(stack.folder / "artifacts")}
    )
    tokens = mint_tokens(pg_url)
    worker = stack.ingest(settings)
    try:
        with serving(settings) as api:
            yield Plant(api, settings, tokens)
    finally:
        worker.stop()
        clear_session(mosquitto, worker.client_id)


@contextmanager
def capturing_agent(stack: Stack, plant: Plant) -> Iterator[Agent]:
    """A real agent looping over the frames, with captures on and its own token in a 0600 file."""
    token = stack.folder / "api-token"
    token.write_text(mint_gateway_token(plant.settings.db_url, GATEWAY))
    token.chmod(0o600)
    config = stack.agent_config(GATEWAY, plant.settings.broker_url, fps=8)
    config["sources"][0]["loop"] = True
    config["captures"] = {"enabled": True, "api_url": plant.api.url, "token_file": str(token),
                          "retry_min_s": 0.2, "retry_max_s": 1.0}  # fmt: skip
    with stack.agent(config) as agent:
        wait_for(plant.born, 60, "the gateway's birth in the cloud")
        yield agent


def check_dataset(stack: Stack, plant: Plant, agent: Agent, capture_id: str) -> None:
    """The dataset holds the gateway's FRAMES files, each hashing as listed, each the source frame
    pixel for pixel (PNG: nothing lost to compression), none twice."""
    assert agent.captures is not None
    store = agent.captures.store
    on_gateway = store.get(capture_id)
    dataset = plant.call("GET", f"/datasets/{capture_id}", params={"files_limit": 500})
    assert (dataset["status"], dataset["frames"], dataset["label"]) == ("complete", FRAMES, "good")
    assert [(f["name"], f["sha256"]) for f in dataset["files"]] == [
        (f.name, f.sha256) for f in on_gateway.files
    ]
    assert len({f["name"] for f in dataset["files"]}) == FRAMES
    for file in dataset["files"]:
        answer = httpx.get(f"{plant.api.url}/api/v1/datasets/{capture_id}/files/{file['name']}", timeout=30)
        assert answer.status_code == 200
        image = cv2.imdecode(np.frombuffer(answer.content, np.uint8), cv2.IMREAD_COLOR)
        source = cv2.imread(str(stack.frames_dir / file["frame"]), cv2.IMREAD_COLOR)
        assert np.array_equal(image, source), file["frame"]
    # The cloud registers the capture before its answer reaches the gateway: wait for the answer.
    wait_for(lambda: store.get(capture_id).phase == "registered", 30, "the gateway to hear it registered")
    assert agent.captures.store.used_bytes == 0


def test_a_capture_started_in_the_cloud_comes_back_as_a_dataset(stack: Stack, plant: Plant) -> None:
    stack.frames(30, seed=777)
    with capturing_agent(stack, plant) as agent:
        capture_id = plant.capture()
        wait_for(lambda: plant.status(capture_id) == "complete", 120, "the capture to be registered")
        check_dataset(stack, plant, agent, capture_id)
        assert agent.captures is not None
        assert agent.captures.uploader.bytes_sent == sum(
            f.size_bytes for f in agent.captures.store.get(capture_id).files
        )


def test_the_cloud_going_away_while_the_gateway_captures_loses_and_doubles_nothing(
    stack: Stack, plant: Plant
) -> None:
    """Fault: the cloud API stops right after the operator asked; the gateway captures while it is
    away and its uploads fail. Promise: when the cloud is back, every captured frame arrives,
    exactly once, and the dataset is whole."""
    stack.frames(30, seed=778)
    with capturing_agent(stack, plant) as agent:
        assert agent.captures is not None
        capture_id = plant.capture()
        plant.api.stop()
        store, uploader = agent.captures.store, agent.captures.uploader
        wait_for(lambda: store.has(capture_id) and store.get(capture_id).phase == "finished", 120,
                 "the gateway to capture every frame while the cloud is away")  # fmt: skip
        wait_for(lambda: uploader.failures >= 2, 60, "the uploader to find the cloud away, twice")
        assert store.get(capture_id).uploaded == []
        plant.api.start()
        wait_for(lambda: plant.status(capture_id) == "complete", 120, "the capture to be registered")
        check_dataset(stack, plant, agent, capture_id)
        assert uploader.bytes_sent == sum(f.size_bytes for f in store.get(capture_id).files)
