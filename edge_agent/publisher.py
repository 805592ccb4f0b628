"""Moves outbox items to the broker in ResultBatch messages, re-sending until the cloud acks."""

from __future__ import annotations

import logging
import random
import threading
import time

from edge_agent.link import MqttLink
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox
from protocol.messages import MAX_PAYLOAD_BYTES, ResultBatch, encode, utcnow
from protocol.topics import Channel, TopicSpace

log = logging.getLogger(__name__)

# Room for the batch envelope (gateway id, stream, sent_at) around the items.
_ENVELOPE_BYTES = 1024
# A re-send waits resend_after_s times a factor drawn from this range, so that gateways stalled by
# one ingest outage do not all re-send in the same second, and so that a re-send never falls into
# step with a broker's round-robin over a share group (a member that crashed keeps its share
# until its session expires; re-sends in step with the rotation would reach only that member).
_RESEND_JITTER = (1.0, 1.5)


class Publisher:
    """One thread: read after the in-memory "sent" pointer, publish QoS 1, wait for PUBACK.

    The pointer rewinds to the first unacked item on every reconnect and whenever the cloud's
    ack makes no progress for ``resend_after_s`` while items are outstanding; items published
    before go out again flagged ``replayed``. Stopping does one last flush of unsent items.
    """

    def __init__(
        self,
        outbox: Outbox,
        link: MqttLink,
        topics: TopicSpace,
        gateway_id: str,
        metrics: Metrics,
        batch_items: int,
        resend_after_s: float,
    ) -> None:
        self._outbox = outbox
        self._link = link
        self._topic = topics.topic(gateway_id, Channel.RESULTS)
        self._gateway_id = gateway_id
        self._metrics = metrics
        self._batch_items = batch_items
        self._resend_after_s = resend_after_s
        self._resend_wait_s = resend_after_s
        self._jitter = random.Random()  # noqa: S311 - spreads timing, guards nothing
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self._pointer = outbox.acked_seq
        self._epoch = -1
        self._outstanding_since: float | None = None
        self._seen_acked = outbox.acked_seq
        self._flush_deadline = 0.0
        self.batches_sent = 0

    def start(self) -> None:
        """Start the publishing thread."""
        self._thread.start()

    def stop(self, flush_timeout: float = 5.0) -> None:
        """Flush what is unsent (if connected, up to ``flush_timeout``), then end the thread."""
        self._flush_deadline = time.monotonic() + flush_timeout
        self._stop.set()
        self._outbox.wait_for_change(0)  # harmless; the loop polls with a short timeout anyway
        self._thread.join(flush_timeout + 5.0)
        if self._thread.is_alive():
            log.warning("publisher thread did not stop in time")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._step():
                    self._outbox.wait_for_change(0.2)
            except Exception:
                log.exception("publisher step failed; retrying")
                self._stop.wait(1.0)
        self._flush()

    def _flush(self) -> None:
        while self._link.connected and time.monotonic() < self._flush_deadline:
            if not self._send_next():
                return

    def _step(self) -> bool:
        """Do one unit of work; return False when there was nothing to do."""
        if not self._link.connected:
            self._link.wait_connected(0.2)
            return True
        acked = self._outbox.acked_seq
        now = time.monotonic()
        if self._link.epoch != self._epoch:
            if self._epoch != -1 or self._pointer > acked:
                log.info("publisher: (re)connected, re-sending from seq %d", acked + 1)
            self._epoch = self._link.epoch
            self._rewind(acked)
        if acked > self._seen_acked:
            self._seen_acked = acked
            self._outstanding_since = now if self._pointer > acked else None
        if self._pointer < acked:
            self._pointer = acked  # acked items are gone; never read below the ack
        if self._outstanding_since is not None and now - self._outstanding_since > self._resend_wait_s:
            log.warning(
                "publisher: no ack progress for %.1f s (acked %d, sent %d); re-sending",
                now - self._outstanding_since,
                acked,
                self._pointer,
            )
            self._rewind(acked)
        return self._send_next()

    def _rewind(self, acked: int) -> None:
        self._pointer = acked
        self._outstanding_since = None

    def _send_next(self) -> bool:
        entries = self._outbox.read_after(
            self._pointer, self._batch_items, max_bytes=MAX_PAYLOAD_BYTES - _ENVELOPE_BYTES
        )
        if not entries:
            return False
        batch = ResultBatch(
            gateway_id=self._gateway_id,
            stream=self._outbox.stream,
            sent_at=utcnow(),
            items=tuple(e.item() for e in entries),
            # Lets the cloud's contiguous ack step over items this outbox shed (they are gone). An ack
            # landing between the read and this query may have released the first entries: clamp.
            oldest_held_seq=min(entries[0].seq, self._outbox.oldest_seq() or entries[0].seq),
        )
        if not self._link.publish(self._topic, encode(batch), qos=1):
            self._metrics.publish_error()
            log.warning(
                "publisher: batch seq %d..%d not acknowledged by the broker", entries[0].seq, entries[-1].seq
            )
            self._stop.wait(0.5)
            return True
        self._outbox.mark_sent([e.seq for e in entries])
        self._pointer = entries[-1].seq
        self.batches_sent += 1
        if self._outstanding_since is None:
            self._outstanding_since = time.monotonic()
            self._resend_wait_s = self._resend_after_s * self._jitter.uniform(*_RESEND_JITTER)
        return True
