"""Faults on the whole path, with a real agent: the promise is nothing lost, nothing doubled."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.net import free_port
from tests.support.e2e import Stack, Truth
from tests.support.mqtt import clear_session
from tests.support.waiting import wait_for

FRAMES = 60


class PrivateMosquitto:
    """A Mosquitto of the test's own, so the test may kill -9 it without touching anyone else's."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        # Persistence is on, as in production: even so, QoS 1 messages acknowledged to the
        # publisher but not yet written out die with a SIGKILL.
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {workdir}/\nautosave_interval 60\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stderr=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("private mosquitto did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def private_mosquitto(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    broker = PrivateMosquitto(tmp_path)
    broker.start()
    yield broker
    broker.stop()


def _assert_exactly_once(results: list[dict[str, object]], truth: Truth) -> None:
    frames = Counter(str(r["frame"]) for r in results)
    doubled = {f: n for f, n in frames.items() if n > 1}
    missing = set(truth.labels) - set(frames)
    assert not doubled, f"doubled: {doubled}"
    assert not missing, f"lost: {sorted(missing)}"
    assert len(results) == len(truth.labels)


def test_ingest_replaced_mid_stream_loses_nothing(
    mosquitto: tuple[str, int], pg_url: str, stack: Stack
) -> None:
    """The fault: the only ingest worker stops mid-stream and another, under a new client id, takes
    over. Mosquitto keeps handing the gone worker's session its share of the group until that
    session expires; the promise kept is that every result still lands exactly once."""
    truth = stack.frames(FRAMES, seed=77)
    broker_url = f"mqtt://{mosquitto[0]}:{mosquitto[1]}"
    settings = stack.cloud(pg_url, broker_url, share_group="ingest").model_copy(
        update={"ingest_session_expiry_s": 5}
    )
    gateway = "gw-restart"
    with stack.api(settings) as client:
        worker = stack.ingest(settings)
        config = stack.agent_config(gateway, broker_url, fps=20)
        try:
            with stack.agent(config) as agent:
                wait_for(lambda: len(stack.results(client, gateway)) >= 10, 60, "the first results")
                worker.stop()  # the fault: ingest goes away while the line keeps producing
                landed_before = len(stack.results(client, gateway))
                time.sleep(2)
                worker = stack.ingest(
                    settings.model_copy(update={"ingest_client_id": worker.client_id + "-b"})
                )
                wait_for(
                    lambda: len(stack.results(client, gateway)) >= FRAMES, 90, "all results after restart"
                )
                wait_for(lambda: agent.outbox.stats()[0] == 0, 30, "the outbox to drain")
        finally:
            worker.stop()
            clear_session(mosquitto, worker.client_id)
        results = stack.results(client, gateway)
    assert landed_before < FRAMES, "the fault must hit mid-stream for the test to mean anything"
    _assert_exactly_once(results, truth)


def test_broker_sigkill_loses_nothing(
    private_mosquitto: PrivateMosquitto, sqlite_url: str, stack: Stack
) -> None:
    truth = stack.frames(FRAMES, seed=78)
    settings = stack.cloud(sqlite_url, private_mosquitto.url, share_group="ingest")
    gateway = "gw-sigkill"
    with stack.api(settings) as client:
        worker = stack.ingest(settings)
        config = stack.agent_config(gateway, private_mosquitto.url, fps=20)
        try:
            with stack.agent(config) as agent:
                wait_for(lambda: len(stack.results(client, gateway)) >= 10, 60, "the first results")
                private_mosquitto.kill()  # the fault: kill -9, acknowledged in-flight messages die with it
                landed_before = len(stack.results(client, gateway))
                time.sleep(1.5)
                private_mosquitto.start()
                wait_for(
                    lambda: len(stack.results(client, gateway)) >= FRAMES, 90, "all results after the kill"
                )
                wait_for(lambda: agent.outbox.stats()[0] == 0, 30, "the outbox to drain")
        finally:
            worker.stop()
        results = stack.results(client, gateway)
    assert landed_before < FRAMES, "the fault must hit mid-stream for the test to mean anything"
    _assert_exactly_once(results, truth)


def test_outbox_over_cap_sheds_loudly_and_acks_still_advance(
    tmp_path: Path, sqlite_url: str, stack: Stack
) -> None:
    """The broker is unreachable while the line produces more than the outbox may hold: the oldest
    results are shed (counted, logged). When the link returns, every item still held lands exactly
    once and the outbox drains: the ack steps over the shed range instead of waiting for it forever."""
    frames = 30
    stack.frames(frames, seed=79)
    broker = PrivateMosquitto(tmp_path)  # not started yet: the plant network is down
    settings = stack.cloud(sqlite_url, broker.url, share_group="ingest")
    gateway = "gw-shed"
    config = stack.agent_config(gateway, broker.url, max_bytes=4096)
    with stack.api(settings) as client, stack.agent(config) as agent:
        assert agent.wait_idle(60), "the agent did not process the folder"
        shed = agent.outbox.shed_total
        held = agent.outbox.stats()[0]
        assert shed > 0, "the cap must force shedding for this test to mean anything"
        assert shed + held == frames
        broker.start()
        worker = stack.ingest(settings)
        try:
            wait_for(lambda: agent.outbox.stats()[0] == 0, 60, "the outbox to drain past the shed range")
            wait_for(lambda: len(stack.results(client, gateway)) >= held, 30, "held results to land")
        finally:
            worker.stop()
            broker.stop()
        results = stack.results(client, gateway)
    seqs = sorted(int(r["seq"]) for r in results)
    assert seqs == list(range(shed + 1, frames + 1)), "exactly the held items, each once"
