"""Agent throughput on a folder of frames vs a bare onnxruntime loop over the same images.

Both read the same PNGs from disk, preprocess them the same way, and run the same model with the
same thread count and batch size. The agent additionally routes frames through its queues, writes
every result durably to its outbox (fsync per micro-batch) and publishes to the real broker.
Goal: agent / bare >= 0.90.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from bench.common import frame_folder, report, timed
from edge_agent.agent import Agent
from edge_agent.config import parse_config
from edge_agent.runtime.preprocess import to_tensor
from protocol.manifest import artifact_path, load_manifest
from simulators.fleet import bundled_manifest


def bare_loop(paths: list[Path], manifest_path: Path, threads: int, batch: int) -> None:
    """Read, preprocess and infer in one thread: what a hand-written script would do."""
    images = (cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths)
    bare_infer(images, len(paths), manifest_path, threads, batch)


def bare_infer(images: Iterator[Any], count: int, manifest_path: Path, threads: int, batch: int) -> None:
    """Preprocess and infer ``count`` frames in micro-batches with a plain onnxruntime session."""
    manifest = load_manifest(manifest_path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(artifact_path(manifest_path, manifest)), options, providers=["CPUExecutionProvider"]
    )
    name = manifest.inputs[0].name
    for _ in range(0, count, batch):
        chunk = list(itertools.islice(images, batch))
        probs = session.run(None, {name: to_tensor(chunk, manifest.preprocessing)})[0]
        np.argmax(probs, axis=1)


def agent_run(folder: Path, manifest_path: Path, threads: int, batch: int, broker: str, work: Path) -> float:
    """Seconds from starting the agent (model load included, like the bare loop) to its last result."""
    config = parse_config(
        {
            "gateway_id": "bench-gw",
            "line": "bench",
            "topic_root": f"bench-{uuid.uuid4().hex[:8]}/factory/v1",
            "state_dir": str(work / f"state-{uuid.uuid4().hex[:6]}"),
            "mqtt": {"url": broker},
            "sources": [{"type": "folder", "name": "replay", "path": str(folder)}],
            "models": [{"slot": "defect", "manifest": str(manifest_path)}],
            "runtime": {"threads": threads, "max_batch": batch, "max_wait_ms": 5},
            "http": {"port": 0},
            "telemetry_interval_s": 60,
        },
        "bench",
    )
    agent = Agent(config)
    start = time.perf_counter()
    agent.start()
    try:
        if not agent.wait_idle(600):
            raise RuntimeError("agent did not finish the folder in 600 s")
        return time.perf_counter() - start
    finally:
        agent.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--repeats", type=int, default=3, help="best of N for each side")
    args = parser.parse_args()
    manifest = bundled_manifest()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        paths = frame_folder(work / "frames", args.frames)
        bare_loop(paths[:16], manifest, args.threads, args.batch)  # warm the page cache and ORT
        bare = min(
            timed(lambda: bare_loop(paths, manifest, args.threads, args.batch)) for _ in range(args.repeats)
        )
        decoded = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]
        compute = min(
            timed(lambda: bare_infer(iter(decoded), len(decoded), manifest, args.threads, args.batch))
            for _ in range(args.repeats)
        )
        agent = min(
            agent_run(work / "frames", manifest, args.threads, args.batch, args.broker, work)
            for _ in range(args.repeats)
        )
    bare_fps, agent_fps, compute_fps = args.frames / bare, args.frames / agent, args.frames / compute
    report(
        f"agent throughput ({args.frames} frames 640x480 PNG, defect-cnn, {args.threads} thread(s), batch {args.batch})",
        [
            ("bare onnxruntime loop", f"{bare_fps:8.1f} frames/s"),
            ("edge agent (outbox + MQTT)", f"{agent_fps:8.1f} frames/s (model load to last result stored)"),
            ("ratio agent / bare", f"{agent_fps / bare_fps:8.3f}   (goal >= 0.90)"),
            ("bare, frames already decoded", f"{compute_fps:8.1f} frames/s (preprocess + inference only)"),
            (
                "ratio agent / decoded-bare",
                f"{agent_fps / compute_fps:8.3f}   (the agent overlaps PNG decoding)",
            ),
        ],
    )


if __name__ == "__main__":
    main()
