"""Moves outbox items to the broker in EventBatch and ResultBatch messages, re-sending until the cloud acks."""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from edge_agent.link import MqttLink
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox, OutboxStream
from protocol.messages import MAX_PAYLOAD_BYTES, EventBatch, ResultBatch, encode, utcnow
from protocol.topics import Channel, TopicSpace

log = logging.getLogger(__name__)

# Room for the batch envelope (gateway id, stream, sent_at) around the items.
_ENVELOPE_BYTES = 1024
# A re-send waits resend_after_s times a factor drawn from this range, so that gateways stalled by
# one ingest outage do not all re-send in the same second, and so that a re-send never falls into
# step with a broker's round-robin over a share group (a member that crashed keeps its share
# until its session expires; re-sends in step with the rotation would reach only that member).
_RESEND_JITTER = (1.0, 1.5)


@dataclass(slots=True)
class _Lane:
    """One outbox stream's publishing state: where sending got to and since when an ack is awaited."""

    source: OutboxStream
    topic: str
    pointer: int
    seen_acked: int
    outstanding_since: float | None = None
    resend_wait_s: float = 0.0


class Publisher:
    """One thread: read after each stream's in-memory "sent" pointer, publish QoS 1, wait for PUBACK.

    Two streams, events (alarms) before results: whenever both have unsent items, events go
    first. Per stream, the pointer rewinds to the first unacked item on every reconnect and
    whenever the cloud's ack for that stream makes no progress for ``resend_after_s`` while items
    are outstanding; items published before go out again flagged ``replayed``. Stopping does one
    last flush of unsent items.
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
        self._gateway_id = gateway_id
        self._metrics = metrics
        self._batch_items = batch_items
        self._resend_after_s = resend_after_s
        self._jitter = random.Random()  # noqa: S311 - spreads timing, guards nothing
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        channels = {"events": Channel.EVENTS, "results": Channel.RESULTS}
        # In the outbox's priority order: events first.
        self._lanes = [
            _Lane(
                s, topics.topic(gateway_id, channels[s.kind]), s.acked_seq, s.acked_seq, None, resend_after_s
            )
            for s in outbox.streams
        ]
        self._epoch = -1
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
        reconnected = self._link.epoch != self._epoch
        first_connect = self._epoch == -1
        self._epoch = self._link.epoch
        now = time.monotonic()
        for lane in self._lanes:
            self._check_lane(lane, now, reconnected, first_connect)
        return self._send_next()

    def _check_lane(self, lane: _Lane, now: float, reconnected: bool, first_connect: bool) -> None:
        acked = lane.source.acked_seq
        if reconnected:
            # Also brings back this stream's ack: the ack topic is retained per gateway, so after
            # a reconnect only the latest ack of either stream is delivered; the re-send is
            # answered with a fresh ack for this one.
            if not first_connect or lane.pointer > acked:
                log.info("publisher: (re)connected, re-sending %s from seq %d", lane.source.kind, acked + 1)
            self._rewind(lane, acked)
        if acked > lane.seen_acked:
            lane.seen_acked = acked
            lane.outstanding_since = now if lane.pointer > acked else None
        if lane.pointer < acked:
            lane.pointer = acked  # acked items are gone; never read below the ack
        if lane.outstanding_since is not None and now - lane.outstanding_since > lane.resend_wait_s:
            log.warning(
                "publisher: no %s ack progress for %.1f s (acked %d, sent %d); re-sending",
                lane.source.kind,
                now - lane.outstanding_since,
                acked,
                lane.pointer,
            )
            self._rewind(lane, acked)

    @staticmethod
    def _rewind(lane: _Lane, acked: int) -> None:
        lane.pointer = acked
        lane.outstanding_since = None

    def _send_next(self) -> bool:
        """Publish one batch of the first stream (in priority order) with unsent items."""
        return any(self._send_lane(lane) for lane in self._lanes)

    def _send_lane(self, lane: _Lane) -> bool:
        source = lane.source
        entries = source.read_after(
            lane.pointer, self._batch_items, max_bytes=MAX_PAYLOAD_BYTES - _ENVELOPE_BYTES
        )
        if not entries:
            return False
        # Lets the cloud's contiguous ack step over items this outbox shed (they are gone). An ack
        # landing between the read and this query may have released the first entries: clamp.
        floor = min(entries[0].seq, source.oldest_seq() or entries[0].seq)
        envelope: dict[str, Any] = {
            "gateway_id": self._gateway_id,
            "stream": source.stream,
            "sent_at": utcnow(),
            "oldest_held_seq": floor,
        }
        batch: ResultBatch | EventBatch
        if source.kind == "events":
            batch = EventBatch(items=tuple(e.event_item() for e in entries), **envelope)
        else:
            batch = ResultBatch(items=tuple(e.item() for e in entries), **envelope)
        if not self._link.publish(lane.topic, encode(batch), qos=1):
            self._metrics.publish_error()
            log.warning(
                "publisher: %s batch seq %d..%d not acknowledged by the broker",
                source.kind,
                entries[0].seq,
                entries[-1].seq,
            )
            self._stop.wait(0.5)
            return True
        source.mark_sent([e.seq for e in entries])
        lane.pointer = entries[-1].seq
        self.batches_sent += 1
        if lane.outstanding_since is None:
            lane.outstanding_since = time.monotonic()
            lane.resend_wait_s = self._resend_after_s * self._jitter.uniform(*_RESEND_JITTER)
        return True
