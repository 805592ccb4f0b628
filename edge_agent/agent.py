"""The Agent: builds every stage from the config, starts them in order and stops them in reverse."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from pydantic import ValidationError

from edge_agent import __version__
from edge_agent.captures import CaptureService
from edge_agent.config import AgentConfig
from edge_agent.drift_watch import DriftWatch
from edge_agent.frames import DropPolicy, Frame, FrameQueue
from edge_agent.link import MqttLink
from edge_agent.machine import read_machine
from edge_agent.metrics import Health, HealthServer, Metrics
from edge_agent.ota import OtaClient, SlotStore, boot_manifest
from edge_agent.outbox import EventDraft, Outbox, ShedReport
from edge_agent.outbox_recovery import open_outbox
from edge_agent.pipeline import InferenceWorker
from edge_agent.publisher import Publisher
from edge_agent.runtime import ModelLoadError, Runner, build_runner
from edge_agent.runtime.golden import GoldenFigures, GoldenSetError, check_golden_set
from edge_agent.runtime.registry import SlotSettings
from edge_agent.shadow.service import ShadowService
from edge_agent.sources import Source, SourceSection, build_source
from edge_agent.telemetry import TelemetryLoop
from protocol.manifest import ManifestError
from protocol.messages import Ack, GatewayState, MachineInfo, SlotDrift, utcnow, wire_text
from protocol.topics import Channel, TopicSpace

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 10.0


def next_session(state_dir: Path) -> int:
    """Increment and persist the session counter (atomic replace, fsynced)."""
    path = state_dir / "session"
    try:
        current = int(path.read_text(encoding="ascii").strip() or 0)
    except FileNotFoundError:
        current = 0
    except ValueError:
        raise RuntimeError(f"{path}: session counter is not an integer; fix or delete the file") from None
    session = current + 1
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="ascii") as fh:
        fh.write(f"{session}\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    return session


class Agent:
    """The gateway daemon, usable in-process: ``Agent(config).start()`` ... ``stop()``."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.topics = TopicSpace(config.topic_root)
        self.metrics = Metrics()
        self._stop = threading.Event()
        self.session = 0
        self.runners: list[Runner] = []
        self.workers: list[InferenceWorker] = []
        self.sources: list[Source[SourceSection]] = []
        self._routes: dict[str, list[FrameQueue]] = {}
        self._started = False
        self.outbox: Outbox
        self.link: MqttLink
        self.publisher: Publisher
        self.http: HealthServer
        self.telemetry: TelemetryLoop
        self.ota: OtaClient | None = None
        self.captures: CaptureService | None = None
        self.shadow: ShadowService | None = None
        self._boot_errors: dict[str, str] = {}
        self._release_paths: dict[str, Path] = {}  # slot -> manifest of the release loaded at start
        self._noticing: set[int] = set()  # ids of threads queuing a shed notice right now
        self.machine: MachineInfo  # read once at start: the hardware does not change

    @property
    def http_port(self) -> int:
        """The bound health/metrics port (useful with ``http.port: 0``)."""
        return self.http.port

    def start(self) -> None:
        """Load models, open the outbox, connect, and start every thread. Raises before starting on bad models."""
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self.runners = [self._load_slot(m.slot, m.manifest, m.settings) for m in cfg.models]
        for runner in self.runners:
            runner.warm_up()
        self.session = next_session(cfg.state_dir)
        self.machine = read_machine()
        log.info(
            "machine: %s (%s), %s, %s core(s), %s bytes of memory, features %s",
            self.machine.cpu_model or "unknown CPU",
            self.machine.arch or "unknown architecture",
            self.machine.cpu_class or "no CPU class",
            self.machine.cores or "?",
            self.machine.memory_bytes or "?",
            ",".join(self.machine.features) or "-",
        )
        if cfg.captures.enabled:  # before anything starts: a missing token stops the start here
            self.captures = CaptureService(
                cfg.captures,
                cfg.state_dir,
                (cfg.gateway_id, cfg.line, cfg.station),
                {r.slot: r.manifest.task for r in self.runners},
                self.emit_event,
                self._stop,
            )
        self.outbox, damaged = open_outbox(cfg.state_dir / "outbox.db", cfg.outbox.max_bytes, self._on_shed)
        if damaged is not None:
            self.metrics.outbox_damaged.inc()
            self.emit_event(
                EventDraft(
                    kind="outbox_damaged",
                    level="error",
                    message=wire_text(
                        f"the outbox file was damaged ({damaged.error}): moved to {damaged.moved_to}; "
                        "results it held and had not sent are not in the cloud",
                        2000,
                    ),
                    details={"moved_to": str(damaged.moved_to)},
                )
            )
        self.link = MqttLink(
            cfg.mqtt,
            cfg.gateway_id,
            self.topics,
            birth=lambda: self._state(True),
            death=self._state(False),
            on_ack=self._on_ack,
            on_desired=self._on_desired if cfg.ota.enabled else None,
            on_captures=self.captures.on_orders if self.captures is not None else None,
        )
        self.metrics.outbox_depth.set_function(lambda: self.outbox.total_stats()[0])
        self.metrics.outbox_bytes.set_function(lambda: self.outbox.total_stats()[1])
        self.metrics.mqtt_connected.set_function(lambda: 1.0 if self.link.connected else 0.0)
        self.publisher = Publisher(
            self.outbox,
            self.link,
            self.topics,
            cfg.gateway_id,
            self.metrics,
            cfg.outbox.batch_items,
            cfg.outbox.resend_after_s,
        )
        by_slot = {m.slot: m for m in cfg.models}
        for runner in self.runners:
            queue = FrameQueue(max(cfg.runtime.queue_size, cfg.runtime.max_batch), self._stop)
            for source_name in cfg.slot_sources(by_slot[runner.slot]):
                self._routes.setdefault(source_name, []).append(queue)
            self.workers.append(
                InferenceWorker(
                    runner,
                    queue,
                    self.outbox,
                    self.metrics,
                    self._stop,
                    cfg.line,
                    cfg.station,
                    cfg.runtime.max_batch,
                    cfg.runtime.max_wait_ms,
                    thumbnails=cfg.thumbnails,
                    drift=DriftWatch(runner.slot, self.metrics, self._drift_event),
                    tap=self.captures.recorder if self.captures is not None else None,
                )
            )
        self._check_golden_sets()
        self.sources = [build_source(s, self._dispatch, self._stop) for s in cfg.sources]
        for name in (s.name for s in cfg.sources if s.name not in self._routes):
            log.warning("source %s feeds no model; its frames are counted and discarded", name)
        try:
            self.http = HealthServer(cfg.http.host, cfg.http.port, self.metrics.registry, self.health)
        except OSError as exc:
            self.outbox.close()
            raise RuntimeError(f"http: cannot listen on {cfg.http.host}:{cfg.http.port}: {exc}") from exc
        telemetry_topic = self.topics.topic(cfg.gateway_id, Channel.TELEMETRY)
        self.telemetry = TelemetryLoop(
            cfg.gateway_id,
            self.metrics.snapshot,
            self.outbox.total_stats,
            lambda payload: self.link.publish(telemetry_topic, payload, qos=0),
            cfg.telemetry_interval_s,
            self._stop,
            drift=self._drift_states,
        )
        if cfg.ota.enabled:  # challengers come with the desired state: shadow runs need OTA
            self.shadow = ShadowService(
                cfg.shadow,
                cfg.gateway_id,
                [w.runner.slot for w in self.workers],
                self.metrics.registry,
                self.emit_event,
                self.captures,
                self._stop,
            )
            for worker in self.workers:
                worker.shadow = self.shadow.slots[worker.runner.slot]
            self.ota = OtaClient(
                cfg,
                self.link,
                self.topics,
                {w.runner.slot: w for w in self.workers},
                {m.slot: m.manifest for m in cfg.models},
                self._on_swap,
                self._stop,
                self._boot_errors,
                emit_event=self.emit_event,
                shadows=self.shadow.slots,
            )
            self.ota.start()
            self.shadow.start()
        self.http.start()
        if self.captures is not None:
            self.captures.start()
        self.link.start()
        self.publisher.start()
        for worker in self.workers:
            worker.start()
        for source in self.sources:
            source.start()
        self.telemetry.start()
        self._started = True
        log.info(
            "agent %s started: gateway %s, session %d, %d model(s), %d source(s)",
            __version__,
            cfg.gateway_id,
            self.session,
            len(self.runners),
            len(self.sources),
        )

    def _load_slot(self, slot: str, factory: Path, settings: SlotSettings) -> Runner:
        """The slot's model at start: the OTA pointer's release if there is one, else the config's.

        Either way with the slot's settings from the config (a parcel line's calibration).
        """
        store = SlotStore(self.config.models_dir, slot)
        manifest, rolled_back = boot_manifest(store, factory)
        if rolled_back:
            log.warning("slot %s: %s", slot, rolled_back)
            self._boot_errors[slot] = rolled_back
        try:
            runner = build_runner(manifest, slot, self.config.runtime.threads, settings)
            self._release_paths[slot] = manifest
            return runner
        except (ModelLoadError, ManifestError) as exc:
            if manifest == factory:
                raise
            # Should not happen (releases are verified before the pointer names them); a gateway
            # with a working factory model beats a gateway that does not start.
            log.error("slot %s: installed release unusable (%s); starting the factory model", slot, exc)
            self._boot_errors[slot] = f"installed release unusable at start: {exc}"
            self._release_paths[slot] = factory
            return build_runner(factory, slot, self.config.runtime.threads, settings)

    def _check_golden_sets(self) -> None:
        """Each loaded release's golden set on this CPU, once at start: a warning, not a refusal.

        A release installed over the air passed this check before it served; a model shipped with
        the gateway never met this CPU, and refusing it would leave the slot with no model at all.
        """
        for runner in self.runners:
            if runner.manifest.golden_set is None:
                continue
            ref = f"{runner.manifest.name} {runner.manifest.version}"
            figures: GoldenFigures | None = None
            try:
                figures = check_golden_set(runner, self._release_paths[runner.slot])
            except (GoldenSetError, RuntimeError, ValueError) as exc:
                problem = f"golden set could not run: {exc}"
            else:
                if figures.passed:
                    log.info("slot %s: %s: %s", runner.slot, ref, figures.describe())
                    continue
                problem = figures.describe()
            log.warning("slot %s: %s disagrees with its reference on this CPU: %s", runner.slot, ref, problem)
            self.emit_event(
                EventDraft(
                    kind="golden_set",
                    level="warning",
                    message=wire_text(f"slot {runner.slot}: {ref} on this CPU: {problem}", 2000),
                    details={"slot": runner.slot, **(figures.details() if figures else {})},
                )
            )

    def _drift_states(self) -> tuple[SlotDrift, ...]:
        watches = [w.drift for w in self.workers if w.drift is not None]
        return tuple(state for state in (d.status() for d in watches) if state is not None)

    def _drift_event(self, draft: EventDraft) -> None:
        # A confirmed drift may start an automatic capture (captures.on_drift).
        self.emit_event(draft)
        if self.captures is not None:
            self.captures.on_event(draft)

    def _on_desired(self, payload: bytes) -> None:
        if self.ota is not None:
            self.ota.on_desired(payload)

    def _on_swap(self) -> None:
        self.runners = [w.runner for w in self.workers]
        self.link.republish_birth()

    def _dispatch(self, frame: Frame, policy: DropPolicy) -> None:
        self.metrics.frame_in(frame.source)
        for queue in self._routes.get(frame.source, []):
            self.metrics.frames_dropped(frame.source, queue.put(frame, policy))

    def _state(self, online: bool) -> GatewayState:
        return GatewayState(
            gateway_id=self.config.gateway_id,
            online=online,
            session=self.session,
            agent_version=__version__,
            line=self.config.line,
            models=tuple(w.runner.loaded for w in self.workers)
            if self.workers
            else tuple(r.loaded for r in self.runners),
            timestamp=utcnow(),
            machine=self.machine,
        )

    def _on_ack(self, ack: Ack) -> None:
        # The outbox routes the ack to the stream it names (results or events).
        deleted = self.outbox.ack(ack.stream, ack.acked_seq)
        log.debug("ack of stream %s up to seq %d: %d item(s) released", ack.stream, ack.acked_seq, deleted)

    def emit_event(self, draft: EventDraft) -> None:
        """Queue a gateway event in the outbox's event stream (durable, acked, sent before results)."""
        try:
            self.outbox.append_events([draft])
        except (ValidationError, sqlite3.Error) as exc:
            # An event must never take down the thread that reports it (inference, OTA).
            log.error("event %s (%s) not queued: %s", draft.kind, draft.message, exc)

    def _on_shed(self, report: ShedReport) -> None:
        self.metrics.shed(report.count)
        me = threading.get_ident()
        if me in self._noticing:
            # Queuing the shed notice shed more (a cap too small even for the events): a notice
            # about that notice would shed the one before it, without end. The warning log and
            # the counter still say it.
            log.warning("outbox: %d %s item(s) shed while queuing a shed notice", report.count, report.kind)
            return
        draft = EventDraft(
            kind="outbox_shed",
            level="warning",
            message=f"outbox over its {self.config.outbox.max_bytes}-byte cap: shed {report.count} "
            f"unacknowledged {'result' if report.kind == 'results' else 'event'}(s), "
            f"seq {report.first_seq}..{report.last_seq}",
            details={
                "stream": report.stream,
                "items": report.kind,
                "count": report.count,
                "bytes": report.bytes,
                "first_seq": report.first_seq,
                "last_seq": report.last_seq,
            },
        )
        self._noticing.add(me)
        try:
            self.emit_event(draft)
        finally:
            self._noticing.discard(me)

    def health(self) -> Health:
        """Current health for /healthz."""
        depth, size = self.outbox.total_stats()
        connected = self.link.connected
        failures = sum(w.failures for w in self.workers)
        ok = connected and bool(self.runners) and failures == 0 and self.link.fatal_error is None
        return Health(
            status="ok" if ok else "degraded",
            mqtt_connected=connected,
            models_loaded=len(self.runners),
            outbox_depth=depth,
            outbox_bytes=size,
            sources_running=sum(1 for s in self.sources if s.running),
            inference_failures=failures,
        )

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every finite source is done and every frame's results are in the outbox (for
        replays and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(s.running for s in self.sources) and all(w.queue.idle for w in self.workers):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Stop sources, drain inference, flush the outbox, publish the death state, join every thread."""
        if not self._started:
            return
        self._started = False
        log.info("agent stopping")
        self._stop.set()
        for source in self.sources:
            if not source.join(JOIN_TIMEOUT_S):
                log.warning("source %s did not stop in time", source.name)
        for worker in self.workers:
            worker.queue.wake()
            if not worker.join(JOIN_TIMEOUT_S):
                log.warning("inference worker %s did not stop in time", worker.runner.slot)
        if self.shadow is not None and not self.shadow.stop(JOIN_TIMEOUT_S):
            log.warning("shadow capture writer did not stop in time")
        self.telemetry.join(JOIN_TIMEOUT_S)
        if self.captures is not None and not self.captures.join(JOIN_TIMEOUT_S):
            log.warning("capture threads did not stop in time")
        if self.ota is not None and not self.ota.join(JOIN_TIMEOUT_S):
            log.warning("OTA thread did not stop in time")
        self.publisher.stop()
        self.link.stop(self._state(False))
        self.http.stop()
        self.outbox.close()
        log.info("agent stopped")
