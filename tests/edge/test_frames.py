"""Frames and the bounded queues between sources and model workers: drop policies, idleness."""

from __future__ import annotations

import threading

import numpy as np

from edge_agent.frames import DropPolicy, Frame, FrameQueue
from protocol.messages import utcnow


def _frame(ref: str) -> Frame:
    return Frame("s", ref, utcnow(), np.zeros((2, 2, 3), np.uint8))


def test_drop_oldest_keeps_the_newest_and_block_waits_for_room() -> None:
    stop = threading.Event()
    queue = FrameQueue(2, stop)
    drops = [queue.put(_frame(str(i)), DropPolicy.DROP_OLDEST) for i in range(4)]
    assert drops == [0, 0, 1, 1]
    assert [f.ref for f in queue.get_batch(10, 0)] == ["2", "3"]

    queue.put(_frame("a"), DropPolicy.BLOCK)
    queue.put(_frame("b"), DropPolicy.BLOCK)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (queue.put(_frame("c"), DropPolicy.BLOCK), done.set()))
    thread.start()
    assert not done.wait(0.3)  # full: the producer waits instead of dropping
    assert [f.ref for f in queue.get_batch(1, 0)] == ["a"]
    assert done.wait(2)
    thread.join(2)
    assert [f.ref for f in queue.get_batch(10, 0)] == ["b", "c"]


def test_a_queue_is_not_idle_while_its_last_batch_is_being_worked_on() -> None:
    """The fault: the queue empties when the worker takes the last batch, before its results are
    stored; a replay that stopped there would miss them. Idle means taken AND marked done."""
    queue = FrameQueue(4, threading.Event())
    assert queue.idle
    queue.put(_frame("a"), DropPolicy.BLOCK)
    queue.put(_frame("b"), DropPolicy.BLOCK)
    batch = queue.get_batch(10, 0)
    assert len(queue) == 0
    assert not queue.idle
    queue.done(1)
    assert not queue.idle
    queue.done(len(batch) - 1)
    assert queue.idle
