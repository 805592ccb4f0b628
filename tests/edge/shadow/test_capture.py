"""edge_agent/shadow/capture.py: the frames where champion and challenger disagree become one capture
per window, capped, finished for upload when the window ends; one a kill cut short is finished at start."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from edge_agent.captures.store import CaptureRecord, CaptureStore
from edge_agent.runtime import Runner
from edge_agent.shadow.capture import ShadowCaptures
from edge_agent.shadow.config import ShadowCaptureConfig, ShadowConfig
from edge_agent.shadow.metrics import ShadowMetrics
from edge_agent.shadow.slot import ShadowSlot
from protocol.captures import CAPTURE_EVENT_KIND
from protocol.messages import utcnow
from tests.support.shadow import Events, frames
from tests.support.waiting import wait_for


@pytest.fixture
def store(tmp_path: Path) -> CaptureStore:
    return CaptureStore(tmp_path / "captures", 1 << 30)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def writer(store: CaptureStore, events: Events) -> Iterator[ShadowCaptures]:
    stop = threading.Event()
    woken: list[bool] = []
    captures = ShadowCaptures(
        store, ShadowCaptureConfig(frames=5), "gw-test", events, lambda: woken.append(True), stop
    )
    captures.start()
    try:
        yield captures
    finally:
        stop.set()
        captures.join(10)


def _finished(store: CaptureStore) -> list[CaptureRecord]:
    return store.in_phase("finished")


def test_disagreeing_frames_of_a_window_become_one_capped_capture(
    store: CaptureStore, events: Events, writer: ShadowCaptures, champion: Runner, all_scratch: Runner
) -> None:
    cfg = ShadowConfig(budget_ms=10_000, max_backlog=None, window_frames=12)
    shadow = ShadowSlot("defect", cfg, ShadowMetrics(CollectorRegistry()), events, writer)
    shadow.attach(all_scratch)
    sent = frames(12)
    for i in range(12):  # one frame per batch: the challenger runs on every one
        shadow.after_batch(champion, sent[i : i + 1], champion.infer(sent[i : i + 1]), 0)
    (record,) = events.records()
    assert record.disagreements == 8
    assert record.captured == 5  # capped at shadow.capture.frames
    wait_for(lambda: len(_finished(store)) == 1, 10, "the window's capture to finish")
    (capture,) = _finished(store)
    assert capture.capture_id == record.capture_id
    assert (capture.origin, capture.slot, capture.status) == ("shadow", "defect", "complete")
    assert capture.requested_frames == len(capture.files) == 5
    dark = {f.ref for i, f in enumerate(sent) if i % 3 != 0}  # the frames they disagree on
    assert {f.frame for f in capture.files} <= dark
    assert {f.model_label for f in capture.files} == {"good"}  # the champion's label
    assert capture.note is not None
    assert "1.1.0" in capture.note
    steps = [d.details["step"] for d in events.of(CAPTURE_EVENT_KIND)]
    assert steps == ["started", "complete"]
    capture.manifest("gw-test", "line-1", "main")  # a valid manifest for the uploader


def test_a_window_that_agrees_everywhere_makes_no_capture(
    store: CaptureStore, events: Events, writer: ShadowCaptures, champion: Runner
) -> None:
    cfg = ShadowConfig(budget_ms=10_000, max_backlog=None, window_frames=6)
    shadow = ShadowSlot("defect", cfg, ShadowMetrics(CollectorRegistry()), events, writer)
    shadow.attach(champion)  # the same model: it agrees with itself
    sent = frames(6)
    for i in range(6):
        shadow.after_batch(champion, sent[i : i + 1], champion.infer(sent[i : i + 1]), 0)
    (record,) = events.records()
    assert (record.disagreements, record.capture_id, record.captured) == (0, None, 0)
    assert store.in_phase("recording") == []
    assert _finished(store) == []


def test_a_capture_a_kill_left_recording_is_finished_with_what_it_holds(
    store: CaptureStore, events: Events
) -> None:
    now = utcnow()
    store.create(
        CaptureRecord(
            capture_id="cap-00000000000000aa",
            slot="defect",
            origin="shadow",
            requested_by="gateway:gw-test (shadow)",
            requested_frames=5,
            max_bytes=1 << 20,
            requested_at=now,
            started_at=now,
        )
    )
    ShadowCaptures(store, ShadowCaptureConfig(), "gw-test", events, lambda: None, threading.Event())
    (capture,) = _finished(store)
    assert capture.status == "refused"  # no frame was written before the kill
    assert capture.reason is not None
    assert "restarted" in capture.reason
