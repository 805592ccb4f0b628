"""Ingest against a Mosquitto that demands credentials (a private instance of the real broker)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.config import CloudSettings
from cloud.ingest.worker import IngestWorker
from tests.support.waiting import wait_for


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[int]:
    """A Mosquitto on a free port that accepts only cloud / s3cret-pass."""
    for tool in ("mosquitto", "mosquitto_passwd"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (apt-get install mosquitto)", pytrace=False)
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "cloud", "s3cret-pass"], check=True)
    passwords.chmod(0o600)
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\npersistence false\n"
        "user root\n"
    )
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("private mosquitto did not start", pytrace=False)
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


def _settings(sqlite_url: str, port: int, password: str) -> CloudSettings:
    return CloudSettings(
        db_url=sqlite_url,
        broker_url=f"mqtt://127.0.0.1:{port}",
        broker_username="cloud",
        broker_password=password,
        share_group=None,
        ingest_client_id=f"test-auth-{uuid.uuid4().hex[:8]}",
    )


def test_ingest_refused_credentials_stops_instead_of_retrying(sqlite_url: str, auth_broker: int) -> None:
    worker = IngestWorker(_settings(sqlite_url, auth_broker, "wrong")).start()
    try:
        wait_for(lambda: worker.fatal_error is not None, what="the refusal to be noticed")
        assert "refused the credentials" in (worker.fatal_error or "")
        wait_for(lambda: not worker.alive, what="the writer to stop")
        assert not worker.connected.is_set()
    finally:
        worker.stop()


def test_ingest_connects_with_good_credentials(sqlite_url: str, auth_broker: int) -> None:
    worker = IngestWorker(_settings(sqlite_url, auth_broker, "s3cret-pass")).start()
    try:
        assert worker.wait_connected(10)
        assert worker.fatal_error is None
    finally:
        worker.stop()
