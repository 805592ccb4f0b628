"""edge_agent/shadow/slot.py: a challenger runs after the champion within its budget, skips rather than
delays, never touches a result, and each window becomes a comparison record with the right counts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from edge_agent.frames import DropPolicy, FrameQueue
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox
from edge_agent.pipeline import InferenceWorker
from edge_agent.runtime import Runner
from edge_agent.shadow.config import ShadowConfig
from edge_agent.shadow.metrics import ShadowMetrics
from edge_agent.shadow.slot import ShadowSlot
from protocol.messages import DefectOutput
from protocol.shadow import SCORE_BINS
from tests.support.shadow import Events, FailingRunner, SlowRunner, frames
from tests.support.waiting import wait_for


def _shadow(events: Events, registry: CollectorRegistry | None = None, **config: object) -> ShadowSlot:
    cfg = ShadowConfig.model_validate(
        {
            "budget_ms": 10_000,
            "max_backlog": None,
            "window_frames": 12,
            "capture": {"enabled": False},
            **config,
        }
    )
    return ShadowSlot("defect", cfg, ShadowMetrics(registry or CollectorRegistry()), events)


def _feed(shadow: ShadowSlot, champion: Runner, n: int, batch: int = 4, backlog: int = 0) -> None:
    """``n`` frames in batches: one frame first (a fresh challenger runs one frame to time itself), then ``batch``."""
    all_frames = frames(n)
    starts = [0, *range(1, n, batch)]
    for i, j in zip(starts, [*starts[1:], n], strict=True):
        chunk = all_frames[i:j]
        shadow.after_batch(champion, chunk, champion.infer(chunk), backlog)


def test_known_frames_give_the_known_matrix_scores_and_counts(champion: Runner, all_scratch: Runner) -> None:
    events = Events()
    shadow = _shadow(events)
    shadow.attach(all_scratch)
    _feed(shadow, champion, 24)
    records = events.records()
    assert len(records) == 2  # two windows of 12 frames
    for record in records:
        assert (record.compared, record.skipped, record.challenger_errors) == (12, 0, 0)
        # Every third frame is bright: the champion says 4 defects and 8 good parts; the challenger 12 defects.
        assert {(c.champion, c.challenger): c.frames for c in record.matrix} == {
            ("defect", "defect"): 4,
            ("good", "defect"): 8,
        }
        assert record.disagreements == 8
        assert record.champion_scores == (8,) + (0,) * (SCORE_BINS - 2) + (4,)
        assert record.challenger_scores == (0,) * (SCORE_BINS - 1) + (12,)
        assert record.champion_p95_ms is not None
        assert record.challenger_p95_ms is not None
        assert record.champion == champion.ref
        assert record.challenger == all_scratch.ref
    assert (shadow.compared, shadow.skipped) == (24, 0)


def test_challenger_slower_than_its_budget_skips_frames_after_measuring_one(
    champion: Runner, all_scratch: Runner
) -> None:
    events = Events()
    registry = CollectorRegistry()
    shadow = _shadow(events, registry, budget_ms=10, probe_interval_s=3600, window_frames=1000)
    slow = SlowRunner(all_scratch, ms_per_frame=30)  # a sleep: slower than 10 ms on any CPU
    shadow.attach(slow)
    _feed(shadow, champion, 20)
    shadow.flush()
    (record,) = events.records()
    assert slow.frames_run == 1  # the first frame measured it; no probe within the hour
    assert (record.compared, record.skipped) == (1, 19)
    assert (
        registry.get_sample_value("shadow_frames_skipped_total", {"slot": "defect", "reason": "budget"}) == 19
    )
    assert registry.get_sample_value("shadow_frames_compared_total", {"slot": "defect"}) == 1


def test_champion_behind_makes_the_challenger_skip_whole_batches(
    champion: Runner, all_scratch: Runner
) -> None:
    events = Events()
    registry = CollectorRegistry()
    shadow = _shadow(events, registry, max_backlog=2)
    shadow.attach(all_scratch)
    _feed(shadow, champion, 8, backlog=3)
    _feed(shadow, champion, 4, backlog=2)
    (record,) = events.records()
    assert (record.compared, record.skipped) == (4, 8)
    assert (
        registry.get_sample_value("shadow_frames_skipped_total", {"slot": "defect", "reason": "backlog"}) == 8
    )


@pytest.mark.allow_logged_exceptions
def test_a_failing_challenger_is_counted_and_never_raises(
    champion: Runner, all_scratch: Runner, caplog: pytest.LogCaptureFixture
) -> None:
    events = Events()
    shadow = _shadow(events)
    shadow.attach(FailingRunner(all_scratch))
    _feed(shadow, champion, 12)
    (record,) = events.records()
    # Never timed (it never got through), it tries one frame per batch: four batches.
    assert (record.compared, record.challenger_errors, record.skipped) == (0, 4, 8)
    assert record.agreement is None
    assert len([r for r in caplog.records if r.exc_info]) == 1  # one traceback, not one per batch


def test_detach_records_the_open_window_and_the_challenger_runs_no_more(
    champion: Runner, all_scratch: Runner
) -> None:
    events = Events()
    shadow = _shadow(events)
    counting = SlowRunner(all_scratch, ms_per_frame=0)
    shadow.attach(counting)
    _feed(shadow, champion, 5)
    assert shadow.detach() is counting
    (record,) = events.records()
    assert record.compared == 5
    _feed(shadow, champion, 8)
    assert counting.frames_run == 5
    assert len(events.records()) == 1
    assert shadow.challenger is None


def test_a_new_champion_closes_the_window_of_the_old_one(champion: Runner, all_scratch: Runner) -> None:
    events = Events()
    shadow = _shadow(events, window_frames=100)
    shadow.attach(all_scratch)
    _feed(shadow, champion, 6)
    batch = frames(3, prefix="g")
    shadow.after_batch(all_scratch, batch, all_scratch.infer(batch), 0)  # another release serves now
    shadow.flush()
    first, second = events.records()
    assert (first.champion, first.compared) == (champion.ref, 6)
    assert (second.champion, second.compared) == (all_scratch.ref, 3)


def test_challenger_never_changes_a_result_and_the_champion_scores_every_frame(
    tmp_path: Path, champion: Runner, all_scratch: Runner
) -> None:
    stop = threading.Event()
    outbox = Outbox(tmp_path / "outbox.db", 1 << 30)
    queue = FrameQueue(8, stop)
    worker = InferenceWorker(champion, queue, outbox, Metrics(), stop, "line-1", "main", 4, 5.0)
    events = Events()
    shadow = _shadow(events, budget_ms=5, window_frames=1000)
    slow = SlowRunner(all_scratch, ms_per_frame=20)  # over budget: it will skip
    shadow.attach(slow)
    worker.shadow = shadow
    sent = frames(40)
    worker.start()
    try:
        for frame in sent:
            queue.put(frame, DropPolicy.BLOCK)
        wait_for(lambda: queue.idle, 30, "every frame through the worker")
    finally:
        stop.set()
        queue.wake()
        worker.join(10)
    shadow.flush()
    items = [entry.item() for entry in outbox.read_after(0, 1000)]
    outbox.close()
    assert sorted(item.frame for item in items) == sorted(f.ref for f in sent)  # each frame once
    assert {item.model.version for item in items} == {"1.0.0"}
    bright = {f.ref for i, f in enumerate(sent) if i % 3 == 0}
    for item in items:
        assert isinstance(item.output, DefectOutput)
        assert item.output.is_defect == (item.frame in bright)  # the champion's verdict, not the challenger's
    (record,) = events.records()
    assert record.compared + record.skipped == 40
    assert record.skipped > 0
    assert slow.frames_run == record.compared
