"""The two stages behind the MQTT callback: decode each message as it comes, then drain for a commit.

Validation is CPU work in this process, while a commit mostly waits on PostgreSQL (another
process, with the GIL released). The decode thread validates message by message, so while the
writer commits one drain the next one is being validated, and the writer's drain takes messages
that are already decoded: a commit never waits for a whole drain to be validated first. Both
queues are bounded, so a slow database still backs up into the broker instead of into memory.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cloud.ingest.decode import Decoded, Inbound, Rejected, classify
from protocol.topics import TopicSpace


class EndOfInput:
    """Put by the decode stage after the last message once the worker stops."""


END = EndOfInput()
Classified = Decoded | Rejected | None  # None: a channel ingest ignores (its own acks)


@dataclass(slots=True)
class Drained:
    """One drain of decoded messages, committed in one transaction."""

    size: int = 0
    valid: list[Decoded] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    ignored: int = 0
    ended: bool = False  # the decode stage has finished: this is the last drain

    def add(self, out: Classified) -> None:
        self.size += 1
        if out is None:
            self.ignored += 1
        elif isinstance(out, Rejected):
            self.rejected.append(out)
        else:
            self.valid.append(out)


class DecodeStage:
    """Validates messages from ``source`` onto ``out``; after ``stop``, the rest and then END."""

    def __init__(
        self,
        source: queue.Queue[Inbound],
        topics: TopicSpace,
        stop: threading.Event,
        out_size: int,
        on_depth: Callable[[int], None],
    ) -> None:
        self.source = source
        self.topics = topics
        self.stop = stop
        self.on_depth = on_depth  # told the inbound queue depth as messages are taken (a gauge)
        self.out: queue.Queue[Classified | EndOfInput] = queue.Queue(maxsize=out_size)

    def run(self) -> None:
        """The thread body."""
        try:
            while not self.stop.is_set():
                try:
                    msg = self.source.get(timeout=0.1)
                except queue.Empty:
                    continue
                self.out.put(classify(msg, self.topics))
                self.on_depth(self.source.qsize())
            # Stopping: whatever was received still gets its one commit attempt.
            while True:
                try:
                    msg = self.source.get_nowait()
                except queue.Empty:
                    break
                self.out.put(classify(msg, self.topics))
        finally:
            self.out.put(END)


def drain(decoded: queue.Queue[Classified | EndOfInput], max_messages: int, max_wait_s: float) -> Drained:
    """Up to ``max_messages`` decoded messages: what is queued, waiting ``max_wait_s`` for more."""
    drained = Drained()
    try:
        first = decoded.get(timeout=0.1)
    except queue.Empty:
        return drained
    if isinstance(first, EndOfInput):
        drained.ended = True
        return drained
    drained.add(first)
    deadline = time.monotonic() + max_wait_s
    while drained.size < max_messages:
        try:
            # Take what is already there without waiting; wait only once the queue runs dry.
            out = decoded.get_nowait()
        except queue.Empty:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                out = decoded.get(timeout=remaining)
            except queue.Empty:
                break
        if isinstance(out, EndOfInput):
            drained.ended = True
            break
        drained.add(out)
    return drained
