"""OTA kit: signed releases of tiny ONNX models, a Range-capable artifact server with injectable
faults, a cloud stand-in that also reads reported state, and a gateway rig on model 1.0.0."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from onnx import TensorProto, helper

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from protocol.desired_signing import sign_desired
from protocol.manifest import ModelManifest, sha256_file
from protocol.messages import encode, utcnow
from protocol.ota import DesiredState, ModelOffer, ReportedState
from protocol.signing import generate_private_key, public_key_pem, sign_manifest
from protocol.topics import Channel, TopicSpace
from tests.support.agent import SIZE, agent_config, write_frames
from tests.support.fake_cloud import FakeCloud
from tests.support.waiting import wait_for

GW = "gw-test"
BRIGHT, DARK = 240, 10


def write_model(
    folder: Path,
    name: str,
    version: str,
    bias: tuple[float, float],
    input_name: str = "image",
    pad_bytes: int = 0,
    **overrides: Any,
) -> Path:
    """softmax(mean_pixel * [-10, 10] + bias) over (good, scratch); returns the manifest path.

    ``bias=(5, -5)``: dark frames are good, bright ones scratch. ``(-5, 5)``: everything scratch.
    A bright golden image is written and listed in ``files``.
    """
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Reshape", ["mean", "shape"], ["column"]),
            helper.make_node("MatMul", ["column", "W"], ["raw"]),
            helper.make_node("Add", ["raw", "B"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 2])],
        initializer=[
            helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 1]),
            helper.make_tensor("W", TensorProto.FLOAT, [1, 2], [-10.0, 10.0]),
            helper.make_tensor("B", TensorProto.FLOAT, [2], list(bias)),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    model.doc_string = f"{name} {version}" + " " * pad_bytes  # own bytes and sha256 per release
    folder.mkdir(parents=True, exist_ok=True)
    artifact = folder / f"{name}.onnx"
    onnx.save(model, artifact)
    golden = folder / "golden.png"
    cv2.imwrite(str(golden), np.full((24, 32, 3), BRIGHT, np.uint8))
    data: dict[str, Any] = {
        "name": name,
        "version": version,
        "task": "defect",
        "artifact": artifact.name,
        "sha256": sha256_file(artifact),
        "size_bytes": artifact.stat().st_size,
        "files": {"golden.png": sha256_file(golden)},
        "inputs": [{"name": input_name, "shape": ["batch", 3, SIZE, SIZE]}],
        "outputs": [{"name": "probs", "shape": ["batch", 2]}],
        "preprocessing": {"resize": [SIZE, SIZE], "color": "rgb", "scale": 1 / 255},
        "labels": ["good", "scratch"],
        "good_label": "good",
        "golden": {
            "input": "golden.png",
            "expected_label": "scratch",
            "expected_scores": {"scratch": 0.9998},
        },
        "created_at": utcnow().isoformat(),
    }
    data.update(overrides)
    path = folder / f"{name}.manifest.json"
    path.write_text(ModelManifest.model_validate(data).model_dump_json(indent=2))
    return path


@dataclass
class Faults:
    """What the artifact server does wrong, per file name."""

    slow_bytes_per_s: dict[str, float] = field(default_factory=dict)
    cut_once_after: dict[str, int] = field(default_factory=dict)
    ranges: list[tuple[str, str | None]] = field(default_factory=list)


class ArtifactServer:
    """A stdlib HTTP server with Range support serving files from one folder, with faults."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.faults = Faults()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                path = server.root / name
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                rng = self.headers.get("Range")
                server.faults.ranges.append((name, rng))
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                cut = server.faults.cut_once_after.pop(name, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                rate = server.faults.slow_bytes_per_s.get(name)
                step = 16 if rate else max(1, len(body))
                for i in range(0, len(body), step):
                    self.wfile.write(body[i : i + step])
                    self.wfile.flush()
                    if rate:
                        time.sleep(step / rate)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class Signer:
    """An engineer's key pair, its public PEM written for the gateway's trusted_keys."""

    def __init__(self, folder: Path, name: str) -> None:
        self.key: Ed25519PrivateKey = generate_private_key()
        self.pem = folder / f"{name}.pub.pem"
        folder.mkdir(parents=True, exist_ok=True)
        self.pem.write_bytes(public_key_pem(self.key.public_key()))

    def offer(self, manifest_path: Path, server: ArtifactServer, **kwargs: Any) -> ModelOffer:
        """Sign the manifest and point the offer at the server (which serves the manifest's folder)."""
        manifest = ModelManifest.model_validate_json(manifest_path.read_bytes())
        prefix = manifest_path.parent.name
        return ModelOffer(
            manifest=manifest,
            signature=sign_manifest(manifest, self.key),
            artifact_url=server.url(f"{prefix}/{manifest.artifact}"),
            file_urls={n: server.url(f"{prefix}/{n}") for n in manifest.files},
            **kwargs,
        )


def signed_desired(
    signer: Signer,
    gateway: str,
    revision: int,
    slots: dict[str, ModelOffer],
    challengers: dict[str, ModelOffer] | None = None,
    valid_for: timedelta = timedelta(hours=1),
) -> DesiredState:
    """A desired state as the cloud signs it, valid for ``valid_for`` from now."""
    now = utcnow()
    desired = DesiredState(
        gateway_id=gateway,
        revision=revision,
        slots=slots,
        challengers=challengers or {},
        issued_at=now,
        expires_at=now + valid_for,
    )
    return sign_desired(desired, signer.key)


class OtaCloud(FakeCloud):
    """FakeCloud that also keeps reported states and publishes desired states, signed with
    ``signer`` (the cloud's desired-state key) valid for an hour."""

    def __init__(self, broker: tuple[str, int], topics: TopicSpace, signer: Signer) -> None:
        self.reported: list[ReportedState] = []
        self.revision = 0
        self.signer = signer
        super().__init__(broker, topics, GW, ack=True)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self.topics.parse(msg.topic).channel is Channel.REPORTED:
            if msg.payload:
                self.reported.append(ReportedState.model_validate_json(bytes(msg.payload)))
            return
        super()._on_message(client, userdata, msg)

    def desire(self, offer: ModelOffer, slot: str = "defect") -> DesiredState:
        return self.desire_all({slot: offer})

    def desire_all(
        self, slots: dict[str, ModelOffer], challengers: dict[str, ModelOffer] | None = None
    ) -> DesiredState:
        """Publish (and return) a signed desired state naming ``slots`` and, per slot, a challenger."""
        self.revision += 1
        signed = signed_desired(self.signer, GW, self.revision, slots, challengers)
        self.publish_desired(encode(signed))
        return signed

    def publish_desired(self, payload: bytes) -> None:
        """Put ``payload`` retained on the gateway's desired topic, as anyone on the broker could."""
        topic = self.topics.topic(GW, Channel.DESIRED)
        self._client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in (json.loads(p) for p in list(self.events)) if e["kind"] == kind]

    def clear_desired(self) -> None:
        self._client.publish(
            self.topics.topic(GW, Channel.DESIRED), b"", qos=1, retain=True
        ).wait_for_publish(5)

    def phase(self) -> str | None:
        return self.reported[-1].slots["defect"].phase if self.reported else None

    def ota_events(self) -> list[dict[str, Any]]:
        return [e for e in (json.loads(p) for p in list(self.events)) if e["kind"] == "ota"]

    def fresh(self, since: datetime) -> list[Any]:
        """Items inferred at or after ``since`` (not an earlier run's results sent late)."""
        return [item for item in self.items() if item.inferred_at >= since]

    def versions_since(self, since: datetime) -> set[str]:
        return {item.model.version for item in self.fresh(since)}

    def close(self) -> None:
        self.clear_desired()
        for channel in (Channel.REPORTED,):
            self._client.publish(self.topics.topic(GW, channel), b"", qos=1, retain=True).wait_for_publish(5)
        super().close()


GOOD_BIAS = (5.0, -5.0)


class Rig:
    """A gateway on model 1.0.0 with OTA on, an artifact server, an engineer's key and a cloud."""

    def __init__(
        self,
        tmp_path: Path,
        broker: tuple[str, int],
        topics: TopicSpace,
        frames: int = 12,
        loop: bool = True,
        **ota: Any,
    ) -> None:
        self.tmp = tmp_path
        self.factory = write_model(tmp_path / "factory", "tiny-defect", "1.0.0", GOOD_BIAS)
        self.releases = tmp_path / "releases"
        self.server = ArtifactServer(self.releases)
        self.signer = Signer(tmp_path / "keys", "engineer")
        self.cloud_signer = Signer(tmp_path / "keys", "cloud")
        # Two dark frames per bright one: the 1.0.0 model's defect rate is 1/3.
        self.frames = write_frames(
            tmp_path / "frames", [BRIGHT if i % 3 == 0 else DARK for i in range(frames)]
        )
        ota_cfg: dict[str, Any] = {
            "enabled": True,
            "trusted_keys": [str(self.signer.pem)],
            "desired_keys": [str(self.cloud_signer.pem)],
            "download_timeout_s": 10,
            "download_retries": 3,
            "health_window_s": 10,
            "health_window_inferences": 24,
            "min_window_inferences": 24,
            "min_baseline_inferences": 12,
            **ota,
        }
        self.config: AgentConfig = agent_config(
            tmp_path,
            broker,
            topics,
            self.factory,
            tmp_path / "frames",
            sources=[
                {
                    "type": "folder",
                    "name": "replay",
                    "path": str(tmp_path / "frames"),
                    "loop": loop,
                    "rate_fps": 40,
                }
            ],
            ota=ota_cfg,
        )
        self.cloud = OtaCloud(broker, topics, self.cloud_signer)
        self.agent = Agent(self.config)

    def release(self, version: str, bias: tuple[float, float] = GOOD_BIAS, **overrides: Any) -> Path:
        return write_model(self.releases / f"v{version}", "tiny-defect", version, bias, **overrides)

    def start(self) -> None:
        self.agent.start()
        # Enough 1.0.0 results for a baseline before anything is offered.
        wait_for(lambda: len(self.cloud.items()) >= 15, 20, "results from the factory model")

    def wait_phase(self, *phases: str, timeout: float = 20) -> None:
        wait_for(lambda: self.cloud.phase() in phases, timeout, f"reported phase in {phases}")

    def assert_old_model_serves(self) -> None:
        """The 1.0.0 model is active, reported, and its results keep arriving."""
        assert self.agent.runners[0].manifest.version == "1.0.0"
        report = self.cloud.reported[-1].slots["defect"]
        assert report.active is not None
        assert report.active.version == "1.0.0"
        mark = utcnow()
        wait_for(lambda: len(self.cloud.fresh(mark)) >= 5, 10, "new results after the failure")
        assert self.cloud.versions_since(mark) == {"1.0.0"}

    def refused(self, offer_path: Path, words: str, signer: Signer | None = None, **offer: Any) -> str:
        """Offer a release; wait for 'failed'; check the error names ``words``; the old model serves."""
        self.cloud.desire((signer or self.signer).offer(offer_path, self.server, **offer))
        self.wait_phase("failed")
        error = self.cloud.reported[-1].slots["defect"].error or ""
        assert words in error, error
        wait_for(
            lambda: any(
                e["details"]["phase"] == "failed" and e["level"] == "error" for e in self.cloud.ota_events()
            ),
            5,
            "an ota error event",
        )
        self.assert_old_model_serves()
        return error

    def close(self) -> None:
        self.agent.stop()
        self.server.close()
        self.cloud.close()
