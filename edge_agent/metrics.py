"""Counters and gauges (Prometheus, a registry of the agent's own) and the health/metrics HTTP server."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from protocol.drift import DRIFT_STATES
from protocol.messages import DriftState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """Totals since start, for telemetry messages."""

    frames_in: int
    frames_dropped: int
    inferences: int
    publish_errors: int


class Metrics:
    """The agent's metrics; a dedicated registry so several agents (tests, fleets) never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._frames_in = Counter("frames_in", "Frames read from sources", ["source"], registry=r)
        self._frames_dropped = Counter(
            "frames_dropped", "Frames dropped by full queues", ["source"], registry=r
        )
        self._inferences = Counter("inferences", "Frames run through a model", ["slot"], registry=r)
        self._latency = Histogram(
            "inference_latency_seconds",
            "Wall time of pre-process + forward + post-process per micro-batch",
            ["slot"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.outbox_depth = Gauge("outbox_depth", "Result items waiting for the cloud's ack", registry=r)
        self.outbox_bytes = Gauge(
            "outbox_bytes", "Bytes of result items waiting for the cloud's ack", registry=r
        )
        self._outbox_shed = Counter(
            "outbox_shed", "Unacked items dropped to respect the byte cap", registry=r
        )
        self._publish_errors = Counter("publish_errors", "Publishes that failed or got no PUBACK", registry=r)
        self.outbox_damaged = Counter(
            "outbox_damaged", "Damaged outbox files moved aside at start (their items unsent)", registry=r
        )
        self.mqtt_connected = Gauge("mqtt_connected", "1 while connected to the broker", registry=r)
        self._drift_state = Gauge(
            "model_drift_state",
            "Drift verdict of the slot's model: 0 ok, 1 suspected, 2 confirmed (absent: not watched)",
            ["slot"],
            registry=r,
        )
        self._drift_ratio = Gauge(
            "model_drift_ratio",
            "Drift statistic / its threshold per signal at the last evaluation (> 1: the signal moved)",
            ["slot", "signal"],
            registry=r,
        )
        self._lock = threading.Lock()
        self._totals = {"frames_in": 0, "frames_dropped": 0, "inferences": 0, "publish_errors": 0}

    def _add(self, key: str, n: int) -> None:
        with self._lock:
            self._totals[key] += n

    def frame_in(self, source: str) -> None:
        """Count one frame read."""
        self._frames_in.labels(source).inc()
        self._add("frames_in", 1)

    def frames_dropped(self, source: str, n: int = 1) -> None:
        """Count frames dropped by a queue policy."""
        if n:
            self._frames_dropped.labels(source).inc(n)
            self._add("frames_dropped", n)

    def inference(self, slot: str, frames: int, seconds: float) -> None:
        """Count one micro-batch of ``frames`` that took ``seconds``."""
        self._inferences.labels(slot).inc(frames)
        self._latency.labels(slot).observe(seconds)
        self._add("inferences", frames)

    def publish_error(self) -> None:
        """Count one failed publish."""
        self._publish_errors.inc()
        self._add("publish_errors", 1)

    def shed(self, n: int) -> None:
        """Count items shed from the outbox."""
        self._outbox_shed.inc(n)

    def drift(self, slot: str, state: DriftState | None, ratios: dict[str, float]) -> None:
        """Set a slot's drift gauges; ``state`` None removes them (a release without a reference)."""
        if state is None:
            with contextlib.suppress(KeyError):
                self._drift_state.remove(slot)
            for labels in [s.labels for m in self._drift_ratio.collect() for s in m.samples]:
                if labels.get("slot") == slot:
                    self._drift_ratio.remove(slot, labels["signal"])
            return
        self._drift_state.labels(slot).set(DRIFT_STATES.index(state))
        for signal, ratio in ratios.items():
            self._drift_ratio.labels(slot, signal).set(ratio)

    def snapshot(self) -> MetricsSnapshot:
        """Totals for a telemetry message."""
        with self._lock:
            return MetricsSnapshot(**self._totals)


@dataclass(frozen=True, slots=True)
class Health:
    """What /healthz reports."""

    status: str
    mqtt_connected: bool
    models_loaded: int
    outbox_depth: int
    outbox_bytes: int
    sources_running: int
    inference_failures: int


class HealthServer:
    """/healthz (JSON) and /metrics (Prometheus text) on a stdlib HTTP server thread.

    /healthz answers 200 also when degraded: a gateway cut off from the broker still buffers
    results, and a supervisor restarting it for that would only make things worse.
    """

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, health: Callable[[], Health]
    ) -> None:
        handler = _handler(registry, health)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()
        log.info(
            "health/metrics on http://%s:%d (/healthz, /metrics)", self._server.server_address[0], self.port
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and join the thread."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout)
        self._server.server_close()


def _handler(registry: CollectorRegistry, health: Callable[[], Health]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                body = json.dumps(asdict(health())).encode()
                self._reply(200, "application/json", body)
            elif self.path == "/metrics":
                self._reply(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            else:
                self._reply(404, "text/plain", b"not found: try /healthz or /metrics\n")

        def _reply(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            log.debug("http: " + format, *args)

    return Handler
