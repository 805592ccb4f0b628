"""Champion throughput and per-frame latency in the edge agent, with and without a challenger in shadow.

Both sides replay the same PNG folder through the real agent with the same champion, threads,
batch size, outbox and broker, OTA on in both; on one side a challenger shadows the slot. It gets
there as on a gateway: a signed offer in the desired state's ``challengers``, downloaded over
HTTP, checked (signature, hashes, smoke test, golden set on this CPU) and installed by the agent
in a first, unmeasured start; the measured starts restore it from the slot's store, so it shadows
from the first frame. A replay keeps the slot's queue full, so the backlog rule
(``shadow.max_backlog``, 4 on a gateway) would keep the challenger out of nearly every batch; it
is off by default here, leaving the time budget (``shadow.budget_ms``) as the only limit: the most
a challenger may cost a champion that is never behind.

Goal: the challenger costs the champion no more than its budget per micro-batch, i.e. throughput
with / without >= T / (T + budget), T the champion's micro-batch time alone (printed as the
floor); >= 0.90 where the budget is at most T / 9.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import numpy as np

from bench.common import frame_folder, report
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig, parse_config
from edge_agent.shadow.config import ShadowConfig
from protocol.manifest import load_manifest
from protocol.messages import encode, utcnow
from protocol.ota import DesiredState, ModelOffer
from protocol.signing import generate_private_key, public_key_pem, sign_manifest
from simulators.fleet import bundled_manifest

GATEWAY = "bench-gw"
SLOT = "defect"
CHAMPION = bundled_manifest("anomaly")  # defect-patchcore 1.1.0, the model docs/ota.md shadows
CHALLENGER = CHAMPION.with_name("defect-patchcore-int8-1.1.0.manifest.json")  # its int8 variant
SKIP_REASONS = ("budget", "backlog", "error")


@dataclass(frozen=True)
class Side:
    """What one measured run of the agent gives."""

    fps: float  # frames per second from the first stored micro-batch to the last
    batch_s: float  # mean wall time per micro-batch over the same span
    infer_p95_ms: float  # champion inference per frame (its micro-batch time / its frames)
    e2e_p95_ms: float  # frame read from disk to its result stored in the outbox
    compared: int
    skipped: dict[str, int]
    challenger_p95_ms: float | None  # from the comparison records, the larger per window


class QuietFiles(SimpleHTTPRequestHandler):
    """Serves the challenger's release folder without a log line per request."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


def serve(folder: Path) -> ThreadingHTTPServer:
    """An HTTP server on a free loopback port for the files of ``folder`` (the agent downloads over HTTP)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietFiles, directory=str(folder)))
    server.daemon_threads = True
    Thread(target=server.serve_forever, name="bench-files", daemon=True).start()
    return server


def signed_offer(manifest_path: Path, server: ThreadingHTTPServer, work: Path) -> tuple[ModelOffer, Path]:
    """The challenger's offer signed by a key made for this run; returns it and the public key's PEM."""
    key = generate_private_key()
    pem = work / "keys" / "bench.pub.pem"
    pem.parent.mkdir(parents=True, exist_ok=True)
    pem.write_bytes(public_key_pem(key.public_key()))
    manifest = load_manifest(manifest_path)
    port = server.server_address[1]

    def url(name: str) -> str:
        return f"http://127.0.0.1:{port}/{urllib.parse.quote(name)}"

    offer = ModelOffer(
        manifest=manifest,
        signature=sign_manifest(manifest, key),
        artifact_url=url(manifest.artifact),
        file_urls={name: url(name) for name in manifest.files},
    )
    return offer, pem


def agent_config(
    name: str,
    frames: Path | None,
    champion: Path,
    args: argparse.Namespace,
    models_dir: Path,
    pem: Path,
    work: Path,
) -> AgentConfig:
    """One agent's config; the slot's store is in ``models_dir``: a fresh state dir keeps its challenger."""
    sources = [] if frames is None else [{"type": "folder", "name": "replay", "path": str(frames)}]
    return parse_config(
        {
            "gateway_id": GATEWAY,
            "line": "bench",
            "topic_root": f"bench-{uuid.uuid4().hex[:8]}/factory/v1",
            "state_dir": str(work / f"state-{name}-{uuid.uuid4().hex[:6]}"),
            "mqtt": {"url": args.broker},
            "sources": sources,
            "models": [{"slot": SLOT, "manifest": str(champion)}],
            "runtime": {"threads": args.threads, "max_batch": args.batch, "max_wait_ms": 5},
            "http": {"port": 0},
            "telemetry_interval_s": 60,
            "ota": {"enabled": True, "trusted_keys": [str(pem)], "models_dir": str(models_dir)},
            "shadow": {"budget_ms": args.budget_ms, "max_backlog": args.max_backlog},
        },
        "bench",
    )


def install_challenger(config: AgentConfig, offer: ModelOffer, timeout_s: float = 300.0) -> None:
    """Start an agent without sources, hand it a desired state naming the challenger, wait until it shadows.

    The payload goes to the same callback the MQTT link calls with the retained desired state, so
    nothing is left retained on the broker.
    """
    agent = Agent(config)
    agent.start()
    try:
        ota, shadow = agent.ota, agent.shadow
        if ota is None or shadow is None:
            raise RuntimeError("the agent runs no OTA client: challengers need ota.enabled")
        desired = DesiredState(
            gateway_id=GATEWAY, revision=1, slots={}, challengers={SLOT: offer}, issued_at=utcnow()
        )
        ota.on_desired(encode(desired))
        deadline = time.monotonic() + timeout_s
        while shadow.slots[SLOT].challenger is None:
            state = ota.slots[SLOT].challenger
            if state is not None and state.phase == "failed":
                raise RuntimeError(f"challenger refused: {state.error}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"challenger not shadowing after {timeout_s:.0f} s")
            time.sleep(0.05)
    finally:
        agent.stop()


def measured_run(config: AgentConfig, frames: int, expect_challenger: bool) -> Side:
    """Replay the folder once; figures from the results in the outbox and the shadow metrics."""
    agent = Agent(config)
    agent.start()
    try:
        shadow = agent.shadow.slots[SLOT] if agent.shadow is not None else None
        if (shadow is not None and shadow.challenger is not None) != expect_challenger:
            raise RuntimeError(f"expected {'a' if expect_challenger else 'no'} challenger on slot {SLOT}")
        if not agent.wait_idle(600):
            raise RuntimeError("agent did not finish the folder in 600 s")
        # No cloud acks this topic root, so every result of the run is still in the outbox.
        items = [entry.item() for entry in agent.outbox.read_after(0, frames + 1)]
    finally:
        agent.stop()  # records the open comparison window
    if len(items) != frames:
        raise RuntimeError(f"{len(items)} results stored for {frames} frames")
    # A micro-batch's results share one inferred_at and carry the batch's latency.
    batches: dict[datetime, int] = {}
    for item in items:
        batches[item.inferred_at] = batches.get(item.inferred_at, 0) + 1
    first, last = min(batches), max(batches)
    span = (last - first).total_seconds()
    infer = [item.latency_ms / batches[item.inferred_at] for item in items]
    e2e = [(item.inferred_at - item.captured_at).total_seconds() * 1000.0 for item in items]
    registry = agent.metrics.registry
    labels = {"slot": SLOT}
    compared = registry.get_sample_value("shadow_frames_compared_total", labels) or 0.0
    skipped = {
        reason: int(
            registry.get_sample_value("shadow_frames_skipped_total", {**labels, "reason": reason}) or 0
        )
        for reason in SKIP_REASONS
    }
    records = agent.shadow.slots[SLOT].records if agent.shadow is not None else []
    p95s = [r.challenger_p95_ms for r in records if r.challenger_p95_ms is not None]
    return Side(
        fps=(frames - batches[first]) / span,
        batch_s=span / (len(batches) - 1),
        infer_p95_ms=float(np.percentile(infer, 95)),
        e2e_p95_ms=float(np.percentile(e2e, 95)),
        compared=int(compared),
        skipped=skipped,
        challenger_p95_ms=max(p95s) if p95s else None,
    )


def backlog_limit(text: str) -> int | None:
    """``--max-backlog``: a frame count, or ``none`` for the backlog rule off."""
    return None if text.lower() in ("none", "null", "off") else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=160)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--repeats", type=int, default=3, help="best of N for each side, run in turn")
    parser.add_argument("--champion", type=Path, default=CHAMPION, help="manifest of the serving model")
    parser.add_argument("--challenger", type=Path, default=CHALLENGER, help="manifest of the challenger")
    parser.add_argument(
        "--budget-ms", type=float, default=ShadowConfig().budget_ms, help="shadow.budget_ms (gateway default)"
    )
    parser.add_argument(
        "--max-backlog",
        type=backlog_limit,
        default=None,
        help="shadow.max_backlog; default none: a replay's queue is always behind",
    )
    args = parser.parse_args()
    if args.frames < 2 * args.batch:
        parser.error("--frames must be at least two micro-batches")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder = work / "frames"
        frame_folder(folder, args.frames)
        with_models, alone_models = work / "models-with", work / "models-alone"
        server = serve(args.challenger.parent)
        try:
            offer, pem = signed_offer(args.challenger, server, work)
            install_challenger(
                agent_config("install", None, args.champion, args, with_models, pem, work), offer
            )
        finally:
            server.shutdown()
            server.server_close()
        alone: list[Side] = []
        shadowed: list[Side] = []
        for _ in range(args.repeats):  # in turn, so a neighbour's load falls on both sides alike
            config = agent_config("alone", folder, args.champion, args, alone_models, pem, work)
            alone.append(measured_run(config, args.frames, expect_challenger=False))
            config = agent_config("with", folder, args.champion, args, with_models, pem, work)
            shadowed.append(measured_run(config, args.frames, expect_challenger=True))
    # Each side's fastest run, all its figures from that run: the least disturbed by other work.
    base = max(alone, key=lambda s: s.fps)
    side = max(shadowed, key=lambda s: s.fps)
    floor = base.batch_s / (base.batch_s + args.budget_ms / 1000.0)
    champion, challenger = load_manifest(args.champion, False), load_manifest(args.challenger, False)
    skipped = sum(side.skipped.values())
    reasons = ", ".join(f"{n} {r}" for r, n in side.skipped.items() if n) or "none"
    challenger_p95 = "n/a" if side.challenger_p95_ms is None else f"{side.challenger_p95_ms:8.1f} ms/frame"
    backlog = "off" if args.max_backlog is None else str(args.max_backlog)
    report(
        f"shadow throughput ({args.frames} frames 640x480 PNG, {champion.name} {champion.version} serving, "
        f"{challenger.name} {challenger.version} in shadow, {args.threads} thread(s), batch {args.batch}, "
        f"budget {args.budget_ms:g} ms, backlog rule {backlog})",
        [
            ("champion alone", f"{base.fps:8.1f} frames/s (first to last micro-batch stored)"),
            ("champion with challenger", f"{side.fps:8.1f} frames/s"),
            (
                "ratio with / without",
                f"{side.fps / base.fps:8.3f}   (goal >= floor {floor:.3f}: {base.batch_s * 1000:.0f} ms "
                f"per micro-batch + the {args.budget_ms:g} ms budget)",
            ),
            ("champion inference p95, alone", f"{base.infer_p95_ms:8.1f} ms/frame"),
            ("champion inference p95, with", f"{side.infer_p95_ms:8.1f} ms/frame"),
            ("ratio with / without", f"{side.infer_p95_ms / base.infer_p95_ms:8.3f}"),
            ("frame to stored result p95, alone", f"{base.e2e_p95_ms:8.1f} ms (queue wait included)"),
            ("frame to stored result p95, with", f"{side.e2e_p95_ms:8.1f} ms"),
            ("ratio with / without", f"{side.e2e_p95_ms / base.e2e_p95_ms:8.3f}"),
            (
                "challenger frames",
                f"{side.compared} compared, {skipped} skipped ({reasons}) of {args.frames}",
            ),
            ("challenger inference p95", challenger_p95),
        ],
    )


if __name__ == "__main__":
    main()
