"""The production broker shape from deploy/: TLS, per-client passwords and the ACL file.

A gateway with its own credentials reaches the cloud over TLS; the same credentials cannot
publish into another gateway's subtree (the ACL drops it), so one compromised gateway cannot
forge another's results.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import SecretStr

from cloud.config import CloudSettings
from cloud.ota.desired import MqttDesiredPublisher
from protocol.messages import WireModel, encode
from protocol.topics import Channel, TopicSpace
from simulators.net import free_port
from tests.support.e2e import Stack
from tests.support.messages import batch, item, new_stream
from tests.support.waiting import wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
PASSWORDS = {
    "factory-ingest": "ingest-secret",
    "factory-api": "api-secret",
    "factory-worker": "worker-secret",
    "gw-1": "gw1-secret",
    "gw-2": "gw2-secret",
}


class _Marker(WireModel):
    """Stands for a desired state: which service's publish reached the gateway."""

    service: str


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

    def client(self, user: str, received: list[tuple[str, bytes]] | None = None) -> mqtt.Client:
        """A connected TLS client logged in as ``user``; messages it receives go to ``received``."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-{uuid.uuid4().hex[:6]}")
        client.username_pw_set(user, PASSWORDS[user])
        client.tls_set(ca_certs=str(self.ca))
        if received is not None:
            client.on_message = lambda _c, _u, msg: received.append((msg.topic, bytes(msg.payload)))
        connected = threading.Event()
        client.on_connect = lambda _c, _u, _f, reason, _p: connected.set() if not reason.is_failure else None
        client.connect("localhost", self.port)
        client.loop_start()
        assert connected.wait(10), f"{user} could not connect"
        return client

    def settings_of(self, settings: CloudSettings, user: str) -> CloudSettings:
        """``settings`` logged in to this broker as ``user``."""
        return settings.model_copy(
            update={
                "broker_url": self.url,
                "broker_username": user,
                "broker_password": SecretStr(PASSWORDS[user]),
                "broker_ca_file": str(self.ca),
            }
        )

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
    settings = secure_broker.settings_of(
        stack.cloud(sqlite_url, secure_broker.url, share_group="ingest"), "factory-ingest"
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


def _subscribe(client: mqtt.Client, topic: str) -> int:
    """Subscribe at QoS 1, wait for the SUBACK and return its code (0-2 granted, >= 0x80 refused)."""
    answered = threading.Event()
    codes: list[int] = []

    def on_subscribe(_c: mqtt.Client, _u: object, _mid: int, reasons: list[ReasonCode], _p: object) -> None:
        codes.extend(r.value for r in reasons)
        answered.set()

    client.on_subscribe = on_subscribe
    client.subscribe(topic, qos=1)
    assert answered.wait(10), f"no SUBACK for {topic}"
    return codes[0]


def test_each_cloud_service_identity_does_its_job_and_nothing_else(
    secure_broker: SecureBroker, sqlite_url: str, stack: Stack
) -> None:
    """The attack: a cloud service's broker credentials leak (ingest's, say). The promise kept, on
    deploy/'s ACL over TLS: with ingest's login nobody can tell a gateway which model to run, and
    with the API's or the worker's nobody can read gateways' streams or forge their results; each
    service still does its own job (the API's and the worker's signed desired states reach the
    gateway, ingest stores results and acks them)."""
    topics = TopicSpace()  # the ACL file names the production root
    stack = replace(stack, topics=topics)
    desired_topic = topics.topic("gw-1", Channel.DESIRED)
    base = stack.cloud(sqlite_url, secure_broker.url, share_group="ingest")
    seen_by_gateway: list[tuple[str, bytes]] = []
    gateway = secure_broker.client("gw-1", seen_by_gateway)
    assert _subscribe(gateway, desired_topic) == 1
    ingest_login = secure_broker.client("factory-ingest")
    api_saw: list[tuple[str, bytes]] = []
    api_login = secure_broker.client("factory-api", api_saw)
    try:
        # Ingest's login publishes a desired state: the broker drops it (routing is done by the
        # time its PUBACK returns, so the API's publish below arrives after it would have).
        ingest_login.publish(desired_topic, b'{"forged": true}', qos=1, retain=True).wait_for_publish(5)
        for service in ("factory-api", "factory-worker"):
            publisher = MqttDesiredPublisher(secure_broker.settings_of(base, service))
            try:
                publisher.publish_retained(
                    Channel.DESIRED, [("gw-1", _Marker(service=service))], "desired state"
                )
            finally:
                publisher.close()
        wait_for(lambda: len(seen_by_gateway) >= 2, 10, "the API's and the worker's desired states")
        assert [json.loads(p)["service"] for _t, p in seen_by_gateway] == ["factory-api", "factory-worker"]

        # The API's login cannot read gateways' streams (Mosquitto grants the subscription and
        # delivers nothing), nor write into them; ingest's login stores what gateways send.
        _subscribe(api_login, topics.subscription(Channel.RESULTS))
        with stack.api(secure_broker.settings_of(base, "factory-api")) as client:
            worker = stack.ingest(secure_broker.settings_of(base, "factory-ingest"))
            try:
                assert worker.wait_connected(15)
                forged = batch("gw-1", new_stream(), [item(7)])
                api_login.publish(
                    topics.topic("gw-1", Channel.RESULTS), encode(forged), qos=1
                ).wait_for_publish(5)
                acks: list[tuple[str, bytes]] = []
                own = secure_broker.client("gw-1", acks)
                assert _subscribe(own, topics.topic("gw-1", Channel.ACK)) == 1
                real = batch("gw-1", new_stream(), [item(1), item(2)])
                own.publish(topics.topic("gw-1", Channel.RESULTS), encode(real), qos=1).wait_for_publish(5)
                wait_for(lambda: len(stack.results(client, "gw-1")) >= 2, 30, "gw-1's own results stored")
                wait_for(lambda: bool(acks), 10, "ingest's ack to gw-1")
                own.disconnect()
                own.loop_stop()
            finally:
                worker.stop()
            stored = sorted(int(r["seq"]) for r in stack.results(client, "gw-1"))
        assert stored == [1, 2], f"the API's login forged a result: {stored}"
        assert api_saw == [], "the API's login read a gateway's results"
    finally:  # the broker, and what it retained, go with the test
        for client in (gateway, ingest_login, api_login):
            client.disconnect()
            client.loop_stop()
