"""The MQTT link against a broker that refuses CONNACK: never "connected", and no retry on bad credentials."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from edge_agent.agent import Agent
from edge_agent.outbox import Outbox
from protocol.topics import TopicSpace
from tests.support.agent import agent_config, build_model, write_frames
from tests.support.fake_cloud import FakeCloud
from tests.support.waiting import wait_for

FRAMES = 12


class RefusingBroker:
    """Answers every MQTT CONNECT with CONNACK return code ``code`` and counts the attempts."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.attempts = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self.port: int = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="refusing-broker", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    if conn.recv(1024)[:1] == b"\x10":  # CONNECT
                        self.attempts += 1
                        conn.sendall(bytes([0x20, 0x02, 0x00, self.code]))
                        time.sleep(0.1)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._server.close()


@pytest.mark.parametrize(("code", "retries"), [(4, False), (5, False), (3, True)])
def test_refused_connack_is_never_connected_and_bad_credentials_stop_retrying(
    tmp_path: Path, topic_space: TopicSpace, code: int, retries: bool
) -> None:
    manifest = build_model(tmp_path / "model")
    frames = tmp_path / "frames"
    write_frames(frames, [10])
    broker = RefusingBroker(code)
    config = agent_config(tmp_path, ("127.0.0.1", broker.port), topic_space, manifest, frames)
    agent = Agent(config)
    try:
        agent.start()
        wait_for(lambda: broker.attempts >= 1, 5, "a connection attempt")
        time.sleep(2.5)  # reconnect_min_s is 1: a retrying client tries again in this window
        assert not agent.link.connected
        assert agent.link.epoch == 0
        health = agent.health()
        assert health.status == "degraded"
        assert health.mqtt_connected is False
        if retries:
            assert broker.attempts >= 2
            assert agent.link.fatal_error is None
        else:
            assert broker.attempts == 1
            assert agent.link.fatal_error is not None
            assert "refused the credentials" in agent.link.fatal_error
        # Results are kept durably while the broker refuses us.
        wait_for(lambda: agent.outbox.stats()[0] == 1, 5, "the result in the outbox")
    finally:
        agent.stop()
        broker.close()


@pytest.mark.allow_logged_exceptions
def test_a_handler_that_raises_does_not_end_the_link(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault: the outbox cannot commit an ack (its disk is full, as bench/chaos's disk fault
    found), so the ack handler raises on paho's network thread. The promise kept: the link lives
    on (it used to end there, stranding the gateway), and the next ack, cumulative, is applied."""
    manifest = build_model(tmp_path / "model")
    names = write_frames(tmp_path / "frames", [10 + i for i in range(FRAMES)])
    cloud = FakeCloud(mosquitto, topic_space, "gw-test", ack=True)
    agent = Agent(agent_config(tmp_path, mosquitto, topic_space, manifest, tmp_path / "frames"))
    failures = {"left": 2}
    real_ack = Outbox.ack

    def full_disk_ack(self: Outbox, stream: str, acked_seq: int) -> int:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return real_ack(self, stream, acked_seq)

    monkeypatch.setattr(Outbox, "ack", full_disk_ack)
    try:
        agent.start()
        wait_for(lambda: cloud.frames() >= set(names), 30, "every frame's result")
        wait_for(lambda: agent.outbox.stats()[0] == 0, 30, "a later ack to empty the outbox")
        assert failures["left"] == 0, "the fault must have happened for the test to mean anything"
        assert agent.link.connected
    finally:
        agent.stop()
        cloud.close()
