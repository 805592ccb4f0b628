"""The MQTT ingest worker: broker -> bounded queue -> decode thread -> DB writer thread -> acks.

The paho callback only enqueues. The decode thread validates each message as it comes; the
writer drains up to ``ingest_batch_size`` decoded messages (or whatever arrived within
``ingest_max_wait_ms``), commits them in one transaction, and then publishes each affected
stream's cumulative ack. A message is acknowledged end to end only after its commit, so anything
lost in between (a crash, a stop) is re-sent by the gateway's outbox.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import start_http_server
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cloud.config import CloudSettings
from cloud.db.engine import make_engine, make_sessionmaker
from cloud.db.migrate import migrate
from cloud.ingest.decode import Decoded, Inbound, Rejected
from cloud.ingest.metrics import IngestMetrics
from cloud.ingest.pipeline import Classified, DecodeStage, Drained, EndOfInput, drain
from cloud.ingest.service import StoreOutcome, StreamKey, advance_acks, store
from protocol.messages import Ack, encode, utcnow
from protocol.topics import Channel

log = logging.getLogger(__name__)
T = TypeVar("T")

# CONNACK codes after which retrying cannot help: the operator must fix the credentials.
_REFUSED_FOR_GOOD = frozenset({"Bad user name or password", "Not authorized"})
_MAX_RETRY_DELAY_S = 10.0


class IngestWorker:
    """One ingest worker; ``start()`` connects and runs, ``stop()`` flushes and joins its threads."""

    def __init__(self, settings: CloudSettings) -> None:
        self.settings = settings
        self.topics = settings.topics
        self.metrics = IngestMetrics.create()
        self.fatal_error: str | None = None
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._queue: queue.Queue[Inbound] = queue.Queue(maxsize=settings.ingest_queue_size)
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._client: mqtt.Client | None = None
        self._decoder: threading.Thread | None = None
        self._writer: threading.Thread | None = None
        self._metrics_server: Any = None
        self._metrics_thread: threading.Thread | None = None

    @property
    def client_id(self) -> str:
        """The MQTT client id; stable across restarts so the broker keeps the session's queue."""
        return self.settings.ingest_client_id or f"factory-ingest-{socket.gethostname()}"

    def start(self) -> IngestWorker:
        """Migrate (waiting for the DB), start the writer thread and connect to the broker."""
        try:
            self._start()
        except BaseException:
            self.stop()  # release whatever was started before the failure
            raise
        return self

    def _start(self) -> None:
        self._engine = make_engine(self.settings.db_url)
        if self.settings.migrate_on_start:
            migrate(self.settings.db_url, wait_s=self.settings.db_wait_s, engine=self._engine)
        self._sessions = make_sessionmaker(self._engine)
        stage = DecodeStage(
            self._queue,
            self.topics,
            self._stop,
            out_size=self.settings.ingest_batch_size,
            on_depth=self.metrics.queue_depth.set,
        )
        self._decoder = threading.Thread(target=stage.run, name="ingest-decode", daemon=True)
        self._writer = threading.Thread(
            target=self._run_writer, args=(stage.out,), name="ingest-writer", daemon=True
        )
        self._writer.start()
        self._decoder.start()
        self._client = self._make_client()
        broker = self.settings.broker
        log.info(
            "ingest %s connecting to %s:%d (tls=%s), subscribing %s",
            self.client_id,
            broker.host,
            broker.port,
            broker.tls,
            self._subscription,
        )
        if self.settings.share_group:
            session = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves it untyped
            session.SessionExpiryInterval = self.settings.ingest_session_expiry_s
            self._client.connect_async(
                broker.host, broker.port, keepalive=30, clean_start=False, properties=session
            )
        else:
            self._client.connect_async(broker.host, broker.port, keepalive=30)
        self._client.loop_start()
        if self.settings.metrics_port is not None:
            self._metrics_server, self._metrics_thread = start_http_server(
                self.settings.metrics_port, addr=self.settings.api_host, registry=self.metrics.registry
            )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop receiving, commit and ack what is queued (one attempt), disconnect, join threads."""
        self._stop.set()
        if self._decoder is not None:
            self._decoder.join(timeout_s)
        if self._writer is not None:
            self._writer.join(timeout_s)
            if self._writer.is_alive():
                log.error("ingest writer did not stop within %.0f s", timeout_s)
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        if self._metrics_thread is not None:
            self._metrics_thread.join(timeout_s)
        if self._engine is not None:
            self._engine.dispose()

    def wait_connected(self, timeout_s: float) -> bool:
        """True once the broker confirmed the subscription, False after ``timeout_s``."""
        return self.connected.wait(timeout_s)

    @property
    def metrics_port(self) -> int | None:
        """The port /metrics is served on (useful with metrics_port=0), None when not served."""
        return None if self._metrics_server is None else int(self._metrics_server.server_port)

    @property
    def alive(self) -> bool:
        """Whether the decode and writer threads are running."""
        threads = (self._decoder, self._writer)
        return all(t is not None and t.is_alive() for t in threads)

    @property
    def _subscription(self) -> str:
        # Every channel, not just the four stored ones, so a gateway publishing on an unknown
        # channel is dead-lettered and visible instead of silently unheard.
        return self.topics.subscription(None, share_group=self.settings.share_group)

    # ---- MQTT (paho's network thread) ------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        if self.settings.share_group:
            # MQTT 5 for its session expiry: brokers may keep handing a disconnected member of a
            # share group its share (Mosquitto does) for as long as its session lives, so a worker
            # that crashed or was replaced under another id must not keep a session for ever.
            client = mqtt.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=mqtt.MQTTv5,
            )
        else:
            # A plain subscription: 3.1.1 also suits the embedded broker, which has no MQTT 5.
            client = mqtt.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                clean_session=False,
                protocol=mqtt.MQTTv311,
            )
        if self.settings.broker_username:
            password = self.settings.broker_password
            client.username_pw_set(
                self.settings.broker_username, password.get_secret_value() if password else None
            )
        if self.settings.broker.tls:
            client.tls_set(ca_certs=self.settings.broker_ca_file)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        if reason.is_failure:
            if str(reason) in _REFUSED_FOR_GOOD:
                self.fatal_error = f"broker {self.settings.broker_url} refused the credentials: {reason}"
                log.error("%s; not retrying", self.fatal_error)
                client.disconnect()
                self._stop.set()
            else:
                log.warning("broker refused the connection: %s; retrying", reason)
            return
        client.subscribe(self._subscription, qos=1)
        log.info("ingest connected (session present: %s)", flags.session_present)

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[ReasonCode], _props: Any
    ) -> None:
        if any(r.is_failure for r in reasons):
            log.error("broker refused the subscription %s: %s", self._subscription, reasons)
            return
        self.connected.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("ingest lost the broker (%s); reconnecting with backoff", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        inbound = Inbound(msg.topic, bytes(msg.payload), utcnow())
        # Back-pressure: a full queue blocks paho's loop (so the broker holds the messages)
        # rather than dropping them; on stop they are left unacked for the gateway to re-send.
        while not self._stop.is_set():
            try:
                self._queue.put(inbound, timeout=0.5)
                self.metrics.queue_depth.set(self._queue.qsize())
                return
            except queue.Full:
                continue

    # ---- writer thread ---------------------------------------------------------------------

    def _run_writer(self, decoded: queue.Queue[Classified | EndOfInput]) -> None:
        # Ends at the decode stage's END, which it puts after the last message once stopped.
        batch_size, max_wait_s = self.settings.ingest_batch_size, self.settings.ingest_max_wait_ms / 1000
        while True:
            drained = drain(decoded, batch_size, max_wait_s)
            if drained.size:
                self._process(drained)
            if drained.ended:
                return

    def _process(self, drained: Drained) -> None:
        started = time.monotonic()
        # After stop() every drain is tried once (see _retry); ``ended`` says so explicitly.
        valid, rejected, final = drained.valid, drained.rejected, drained.ended
        for dec in valid:
            self.metrics.messages.labels(channel=dec.channel.value).inc()
        outcome = self._retry("commit", final, lambda s: store(s, valid, rejected), drained.size)
        if outcome is None:
            return
        self._count(valid, rejected, outcome)
        outcome.ignored = drained.ignored
        acks = self._retry(
            "ack",
            final,
            lambda s: advance_acks(s, outcome.streams, outcome.event_streams),
            len(outcome.streams),
        )
        if acks:
            self._publish_acks(acks)
        self.metrics.batch_seconds.observe(time.monotonic() - started)

    def _retry(self, what: str, final: bool, work: Callable[[Session], T], size: int) -> T | None:
        """Run ``work(session)`` in a transaction until it commits; None if stopped meanwhile."""
        if self._sessions is None:
            raise RuntimeError("IngestWorker: start() must run before the writer processes messages")
        delay = 0.2
        while True:
            try:
                with self._sessions.begin() as session:
                    result: T = work(session)
                return result
            except SQLAlchemyError as exc:
                self.metrics.commit_failures.inc()
                if final or self._stop.is_set():
                    log.warning(
                        "%s of %d item(s) abandoned at stop (%s); gateways will re-send", what, size, exc
                    )
                    return None
                log.warning("%s of %d item(s) failed (%s); retrying in %.1f s", what, size, exc, delay)
                if self._stop.wait(delay):
                    return None
                delay = min(delay * 2, _MAX_RETRY_DELAY_S)

    def _count(self, valid: list[Decoded], rejected: list[Rejected], outcome: StoreOutcome) -> None:
        self.metrics.commits.inc()
        self.metrics.results_inserted.inc(outcome.results_inserted)
        self.metrics.results_duplicate.inc(outcome.results_duplicate)
        for rej in rejected:
            self.metrics.dead_letters.labels(reason=rej.reason_code).inc()
            log.warning("dead letter on %s: %s (%s)", rej.topic, rej.reason_code, rej.reason)
        log.debug(
            "committed %d message(s): %d result(s) new, %d duplicate, %d dead",
            len(valid) + len(rejected),
            outcome.results_inserted,
            outcome.results_duplicate,
            len(rejected),
        )

    def _publish_acks(self, acks: dict[StreamKey, int]) -> None:
        client = self._client
        if client is None:
            return
        for (gateway_id, stream), seq in acks.items():
            ack = Ack(gateway_id=gateway_id, stream=stream, acked_seq=seq, committed_at=utcnow())
            # Retained, so a gateway that reconnects learns its ack without waiting for traffic;
            # paho queues QoS 1 publishes while disconnected and sends them on reconnect.
            client.publish(self.topics.topic(gateway_id, Channel.ACK), encode(ack), qos=1, retain=True)
            self.metrics.acks_published.inc()
