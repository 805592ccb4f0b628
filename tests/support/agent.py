"""For tests that run the edge agent: a tiny ONNX model + manifest, PNG frames, agent configs, and a
source sink that keeps every frame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper

from edge_agent.config import AgentConfig, parse_config
from edge_agent.frames import DropPolicy, Frame
from protocol.manifest import ModelManifest, sha256_file
from protocol.messages import utcnow
from protocol.topics import TopicSpace

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
    # Tests on the two xdist workers share the machine's broker, each under a topic root of its
    # own: a client id per root keeps two gw-test agents from taking each other's session over.
    data["mqtt"].setdefault("client_id", f"{data['gateway_id']}-{topics.root.split('/')[0]}")
    return parse_config(data, "test-config")


class Collector:
    """A source's sink that keeps every frame with its drop policy."""

    def __init__(self) -> None:
        self.frames: list[tuple[Frame, DropPolicy]] = []

    def __call__(self, frame: Frame, policy: DropPolicy) -> None:
        self.frames.append((frame, policy))
