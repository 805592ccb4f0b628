"""Test helpers: a tiny ONNX model + manifest, PNG frames, agent configs, and a small in-test cloud."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import paho.mqtt.client as mqtt
from onnx import TensorProto, helper
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.config import AgentConfig, parse_config
from protocol.manifest import ModelManifest, sha256_file
from protocol.messages import Ack, EventBatch, GatewayState, ResultBatch, decode, encode, utcnow
from protocol.topics import Channel, TopicSpace

SIZE = 8  # model input is SIZE x SIZE


def build_model(
    folder: Path,
    *,
    name: str = "tiny-defect",
    task: str = "defect",
    labels: tuple[str, ...] = ("good", "scratch"),
    dynamic: bool = True,
    input_name: str = "image",
    thresholds: dict[str, float] | None = None,
    manifest_overrides: dict[str, Any] | None = None,
) -> Path:
    """An ONNX graph: softmax(mean_pixel * W + B) with a dynamic (or fixed 1) batch; returns the manifest path.

    With two labels, a mean (scaled) pixel value below 0.5 gives label 0, above gives label 1.
    """
    n = len(labels)
    batch: int | str = "batch" if dynamic else 1
    weights = np.linspace(-10.0, 10.0, n).astype(np.float32).reshape(1, n)
    bias = np.linspace(5.0, -5.0, n).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", [input_name], ["mean"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Reshape", ["mean", "shape"], ["column"]),
            helper.make_node("MatMul", ["column", "W"], ["logits_raw"]),
            helper.make_node("Add", ["logits_raw", "B"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        ],
        "tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, n])],
        initializer=[
            helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 1]),
            helper.make_tensor("W", TensorProto.FLOAT, [1, n], weights.flatten().tolist()),
            helper.make_tensor("B", TensorProto.FLOAT, [n], bias.tolist()),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    artifact = folder / f"{name}.onnx"
    onnx.save(model, artifact)
    data: dict[str, Any] = {
        "name": name,
        "version": "1.0.0",
        "task": task,
        "artifact": artifact.name,
        "sha256": sha256_file(artifact),
        "size_bytes": artifact.stat().st_size,
        "inputs": [{"name": input_name, "shape": [batch, 3, SIZE, SIZE]}],
        "outputs": [{"name": "probs", "shape": [batch, n]}],
        "preprocessing": {"resize": [SIZE, SIZE], "color": "rgb", "scale": 1 / 255},
        "labels": list(labels),
        "good_label": labels[0] if task == "defect" else None,
        "thresholds": thresholds or {},
        "created_at": utcnow().isoformat(),
    }
    data.update(manifest_overrides or {})
    manifest = ModelManifest.model_validate(data)
    path = folder / f"{name}.manifest.json"
    path.write_text(manifest.model_dump_json(indent=2))
    return path


def write_frames(folder: Path, values: list[int], size: tuple[int, int] = (32, 24)) -> list[str]:
    """One PNG per value (a flat grey image), named frame_000001.png ...; returns the names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, value in enumerate(values, start=1):
        name = f"frame_{i:06d}.png"
        image = np.full((size[1], size[0], 3), value, dtype=np.uint8)
        assert cv2.imwrite(str(folder / name), image)
        names.append(name)
    return names


def agent_config(
    tmp_path: Path, broker: tuple[str, int], topics: TopicSpace, manifest: Path, frames: Path, **extra: Any
) -> AgentConfig:
    """A config with one folder source feeding one model slot, HTTP on a free port."""
    data: dict[str, Any] = {
        "gateway_id": "gw-test",
        "line": "line-1",
        "topic_root": topics.root,
        "state_dir": str(tmp_path / "state"),
        "mqtt": {"url": f"mqtt://{broker[0]}:{broker[1]}", "keepalive_s": 5, "publish_timeout_s": 5},
        "sources": [{"type": "folder", "name": "replay", "path": str(frames)}],
        "models": [{"slot": "defect", "manifest": str(manifest), "sources": ["replay"]}],
        "runtime": {"threads": 1, "max_batch": 4, "max_wait_ms": 10},
        "outbox": {"batch_items": 3, "resend_after_s": 1.0},
        "http": {"port": 0},
        "telemetry_interval_s": 0.5,
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_config(data, "test-config")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until ``predicate`` is true; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class FakeCloud:
    """A paho subscriber standing in for cloud ingest: collects batches, acks the contiguous prefix."""

    def __init__(
        self, broker: tuple[str, int], topics: TopicSpace, gateway_id: str, ack: bool = True
    ) -> None:
        self.topics = topics
        self.gateway_id = gateway_id
        self.ack = ack
        self.batches: list[ResultBatch] = []
        self.states: list[GatewayState] = []
        self.telemetry = 0
        self.events: list[bytes] = []
        self._seen: dict[str, set[int]] = {}
        self._event_ids: set[uuid.UUID] = set()
        self._lock = threading.Lock()
        self._client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="")
        self._client.on_message = self._on_message
        self._client.on_connect = lambda c, *_: c.subscribe(topics.subscription(None, gateway_id), qos=1)
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.connect(*broker)
        self._client.loop_start()
        assert self._subscribed.wait(5), "fake cloud could not subscribe"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        channel = self.topics.parse(msg.topic).channel
        payload = bytes(msg.payload)
        if channel is Channel.RESULTS:
            batch = decode(ResultBatch, payload)
            with self._lock:
                self.batches.append(batch)
                seen = self._seen.setdefault(batch.stream, set())
                seen.update(item.seq for item in batch.items)
                contiguous = 0
                while contiguous + 1 in seen:
                    contiguous += 1
            if self.ack:
                ack = Ack(
                    gateway_id=self.gateway_id,
                    stream=batch.stream,
                    acked_seq=contiguous,
                    committed_at=utcnow(),
                )
                client.publish(self.topics.topic(self.gateway_id, Channel.ACK), encode(ack), qos=1)
        elif channel is Channel.STATE:
            if payload:
                with self._lock:
                    self.states.append(decode(GatewayState, payload))
        elif channel is Channel.TELEMETRY:
            self.telemetry += 1
        elif channel is Channel.EVENTS:
            self._on_events(client, payload)

    def _on_events(self, client: mqtt.Client, payload: bytes) -> None:
        """Keep each event once, as the cloud does (by id), as a flat item; ack like results."""
        batch = decode(EventBatch, payload)
        with self._lock:
            for event in batch.items:
                if event.id not in self._event_ids:
                    self._event_ids.add(event.id)
                    self.events.append(event.model_dump_json(exclude={"replayed"}).encode())
            seen = self._seen.setdefault(batch.stream, set())
            seen.update(event.seq for event in batch.items)
            contiguous = (batch.oldest_held_seq or 1) - 1
            while contiguous + 1 in seen:
                contiguous += 1
        if self.ack:
            ack = Ack(
                gateway_id=self.gateway_id, stream=batch.stream, acked_seq=contiguous, committed_at=utcnow()
            )
            client.publish(self.topics.topic(self.gateway_id, Channel.ACK), encode(ack), qos=1)

    def items(self) -> list[Any]:
        """Every received item, in arrival order."""
        with self._lock:
            return [item for batch in self.batches for item in batch.items]

    def frames(self) -> set[str]:
        """Distinct frame references received."""
        return {item.frame for item in self.items()}

    def clear_retained(self) -> None:
        """Remove the retained state so the broker keeps nothing from this test."""
        self._client.publish(
            self.topics.topic(self.gateway_id, Channel.STATE), b"", qos=1, retain=True
        ).wait_for_publish(5)

    def close(self) -> None:
        """Clean up retained state and disconnect."""
        self.clear_retained()
        self._client.disconnect()
        self._client.loop_stop()
