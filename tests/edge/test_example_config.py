"""edge_agent/gateway.example.yaml: it loads, every file it names is there, and an agent runs it.

Promise (README "What runs where"): a plant starts from the example. So the example is loaded by
the agent's own loader, every manifest it names loads with its hashes verified, and
``edge-agent --config`` on it starts, loads both models, is born on the real Mosquitto and
publishes results of both slots.

What the running copy changes, and why: the example's two cameras (``cam1``, a camera line at
127.0.0.1:8081, and ``belt1``, a parcel conveyor at 127.0.0.1:8082) are pointed at a
``factory-sim camera --serve`` and a ``factory-sim parcels --serve`` this test starts on free
ports (a shared machine has no fixed free ports); the topic root is the test's own (the broker is
shared) and the health port is 0 (picked free, read from the log). Everything else is the
example's: the copy sits in an ``edge_agent/`` folder beside a link to ``domain_models``, so its
relative paths (``../domain_models/...``, ``state_dir: var/gw-1``, the replay folder ``frames``)
resolve as they do beside the example. The replay folder does not exist there (a plant's own
images go there): the agent says so in its log and goes on.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge_agent.config import load_config
from protocol.manifest import load_manifest
from protocol.topics import TopicSpace
from simulators.net import console_script, free_port
from tests.support.fake_cloud import FakeCloud
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "edge_agent" / "gateway.example.yaml"
RUN_TIMEOUT_S = 120.0  # both models loaded, born, and a parcel counted (slow on a busy machine)


def test_the_example_loads_and_names_only_files_that_exist() -> None:
    config = load_config(EXAMPLE)
    assert [m.slot for m in config.models] == ["defect", "parcels"]
    for model in config.models:
        manifest = load_manifest(model.manifest)  # verifies the artifact's and every file's sha256
        assert manifest.golden is None or (model.manifest.parent / manifest.golden.input).is_file()
    for path in [
        config.mqtt.tls.ca_file,
        config.mqtt.tls.cert_file,
        config.mqtt.tls.key_file,
        *config.ota.trusted_keys,
    ]:
        assert path is None or path.is_file(), path
    parcels = config.models[1].parcels
    assert parcels is not None
    assert parcels.routes is not None
    assert parcels.routes.rules, "the example's sort table has rules"


@pytest.fixture
def cameras() -> Iterator[dict[str, int]]:
    """The example's cameras, simulated: source name -> port of its MJPEG stream."""
    ports = {"cam1": free_port(), "belt1": free_port()}
    sim = console_script("factory-sim")
    procs = [
        subprocess.Popen([sim, "camera", "--serve", str(ports["cam1"])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),  # noqa: S603
        subprocess.Popen([sim, "parcels", "--serve", str(ports["belt1"])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),  # noqa: S603
    ]  # fmt: skip
    try:
        for port in ports.values():
            wait_for(lambda p=port: _answers(f"http://127.0.0.1:{p}/stream.mjpg"), 60, f"a camera on :{port}")
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - the test's own simulator
            return bool(response.read(1))
    except OSError:
        return False


def _running_copy(folder: Path, cameras: dict[str, int], topics: TopicSpace) -> Path:
    """The example with the changes the module docstring lists, where its relative paths resolve."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    for source in data["sources"]:
        if source["name"] in cameras:
            source["url"] = f"http://127.0.0.1:{cameras[source['name']]}/stream.mjpg"
    assert {s["name"] for s in data["sources"] if s["type"] == "camera"} == set(cameras)
    data["topic_root"] = topics.root
    data["http"]["port"] = 0
    (folder / "edge_agent").mkdir(parents=True)
    (folder / "domain_models").symlink_to(ROOT / "domain_models")
    copy = folder / "edge_agent" / "gateway.yaml"
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    return copy


def test_an_agent_runs_the_example(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace, cameras: dict[str, int]
) -> None:
    config = load_config(EXAMPLE)
    copy = _running_copy(tmp_path, cameras, topic_space)
    cloud = FakeCloud(mosquitto, topic_space, config.gateway_id)
    log = tmp_path / "agent.log"
    with log.open("wb") as sink:
        agent = subprocess.Popen(  # noqa: S603 - our own console script
            [console_script("edge-agent"), "--config", str(copy)], stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        slots = {(m.slot, load_manifest(m.manifest).name) for m in config.models}

        def born() -> bool:
            assert agent.poll() is None, f"edge-agent exited {agent.returncode}:\n{log.read_text()[-3000:]}"
            return any(s.online and {(m.slot, m.name) for m in s.models} == slots for s in cloud.states)

        wait_for(born, RUN_TIMEOUT_S, f"a birth with {slots}")
        health = re.search(r"health/metrics on (http://\S+)", log.read_text())
        assert health is not None, log.read_text()
        with urllib.request.urlopen(f"{health.group(1)}/healthz", timeout=5) as response:  # noqa: S310
            assert json.load(response)["models_loaded"] == len(slots)
        names = {name for _slot, name in slots}
        wait_for(lambda: names <= {i.model.name for i in cloud.items()}, RUN_TIMEOUT_S, f"results of {names}")
    finally:
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(60)
        time.sleep(0.2)  # the death state, published before exit, reaches the fake cloud
        cloud.close()
    assert code == 0, log.read_text()[-3000:]
    assert "source replay: no files match" in log.read_text()
    assert cloud.states[-1].online is False
