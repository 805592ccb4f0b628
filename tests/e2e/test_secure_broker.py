"""The production broker shape from deploy/: TLS, per-client passwords and the ACL file.

A gateway with its own credentials reaches the cloud over TLS; the same credentials cannot
publish into another gateway's subtree (the ACL drops it), so one compromised gateway cannot
forge another's results.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr

from protocol.messages import encode
from protocol.topics import Channel, TopicSpace
from simulators.net import free_port
from tests.support.e2e import Stack
from tests.support.messages import batch, item, new_stream
from tests.support.waiting import wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
PASSWORDS = {"factory-cloud": "cloud-secret", "gw-1": "gw1-secret", "gw-2": "gw2-secret"}


class SecureBroker:
    def __init__(self, work: Path) -> None:
        certs = work / "certs"
        subprocess.run(
            ["bash", str(DEPLOY / "make-dev-certs.sh"), str(certs)], check=True, capture_output=True
        )
        passwd = work / "passwd"
        passwd.touch()
        for user, password in PASSWORDS.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
        self.ca = certs / "ca.crt"
        self.port = free_port()
        conf = work / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\n"
            f"acl_file {DEPLOY / 'acl'}\ncafile {self.ca}\ncertfile {certs / 'server.crt'}\n"
            f"keyfile {certs / 'server.key'}\ntls_version tlsv1.2\n"
            # Tests run as root with root-only temp folders; a broker that dropped to the
            # mosquitto user could not read its key there. Production runs it as its own user.
            "user root\n"
        )
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        log = work / "mosquitto.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen([binary, "-c", str(conf)], stderr=out)  # noqa: S603
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise AssertionError(f"secure mosquitto did not start: {log.read_text()}")

    @property
    def url(self) -> str:
        return f"mqtts://localhost:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[SecureBroker]:
    broker = SecureBroker(tmp_path)
    yield broker
    broker.stop()


def test_tls_and_acl_confine_each_gateway_to_its_own_subtree(
    secure_broker: SecureBroker, sqlite_url: str, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ACL file names the production root, so this test uses it on its private broker.
    topics = TopicSpace()
    stack = replace(stack, topics=topics)
    truth = stack.frames(10, seed=80)
    monkeypatch.setenv("GW1_PASSWORD", PASSWORDS["gw-1"])
    settings = stack.cloud(sqlite_url, secure_broker.url, share_group="ingest").model_copy(
        update={
            "broker_username": "factory-cloud",
            "broker_password": SecretStr(PASSWORDS["factory-cloud"]),
            "broker_ca_file": str(secure_broker.ca),
        }
    )
    config = stack.agent_config("gw-1", secure_broker.url)
    config["mqtt"].update(
        username="gw-1", password_env="GW1_PASSWORD", tls={"ca_file": str(secure_broker.ca)}
    )
    with stack.api(settings) as client:
        worker = stack.ingest(settings)
        try:
            with stack.agent(config):
                wait_for(lambda: len(stack.results(client, "gw-1")) == len(truth.labels), 60, "gw-1 results")
            # gw-1's credentials try to write into gw-2's subtree: the broker must drop it.
            intruder = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"intruder-{uuid.uuid4().hex[:6]}")
            intruder.username_pw_set("gw-1", PASSWORDS["gw-1"])
            intruder.tls_set(ca_certs=str(secure_broker.ca))
            intruder.connect("localhost", secure_broker.port)
            intruder.loop_start()
            forged = batch("gw-2", new_stream(), [item(1)])
            intruder.publish(topics.topic("gw-2", Channel.RESULTS), encode(forged), qos=1).wait_for_publish(5)
            # A control message on its own subtree still passes, so we know the intruder's link works.
            own = batch("gw-1", new_stream(), [item(1)])
            intruder.publish(topics.topic("gw-1", Channel.RESULTS), encode(own), qos=1).wait_for_publish(5)
            wait_for(
                lambda: len(stack.results(client, "gw-1")) == len(truth.labels) + 1, 20, "control message"
            )
            intruder.disconnect()
            intruder.loop_stop()
        finally:
            worker.stop()
        assert stack.results(client, "gw-2") == []
        assert client.get("/api/v1/gateways/gw-2").status_code == 404
