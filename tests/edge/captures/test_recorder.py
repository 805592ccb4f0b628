"""The capture recorder: orders become captures of the next frames of a slot, one capture at a time
per slot; refusals are recorded for the cloud; a restart resumes a capture; drift captures pick
frames near the threshold."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.captures.recorder import CaptureRecorder
from edge_agent.captures.store import CaptureStore, Selector
from edge_agent.frames import Frame
from edge_agent.outbox_streams import EventDraft
from edge_agent.runtime import Prediction
from protocol.messages import DefectOutput, ModelRef
from tests.support.captures import frames, order
from tests.support.waiting import wait_for

SLOTS = {"defect": "defect", "notes": "notes"}
REF = ModelRef(name="defect-cnn", version="1.0", sha256="a" * 64)


@dataclass
class Slot:
    """What the recorder reads of a runner: its slot and the model it serves."""

    slot: str = "defect"
    ref: ModelRef = REF


class Recording:
    """A recorder on a store in ``folder``, its events, and its thread stopped on ``close``."""

    def __init__(self, folder: Path, rng: random.Random | None = None) -> None:
        self.stop = threading.Event()
        self.events: list[EventDraft] = []
        self.store = CaptureStore(folder, 1 << 26)
        self.recorder = CaptureRecorder(self.store, SLOTS, self.events.append, self.stop, rng)
        self.recorder.start()

    def feed(self, batch: list[Frame], predictions: list[Prediction] | None = None) -> None:
        self.recorder.observe(Slot(), batch, predictions or [])  # type: ignore[arg-type]

    def phase(self, capture_id: str) -> str:
        return self.store.get(capture_id).phase

    def said(self, capture_id: str, step: str) -> bool:
        """Whether the recorder emitted ``step`` of ``capture_id`` (it does after recording it)."""
        return (capture_id, step) in self.steps()

    def close(self) -> None:
        self.stop.set()
        assert self.recorder.join(10)

    def steps(self) -> list[tuple[str, object]]:
        return [(str(e.details["capture_id"]), e.details["step"]) for e in self.events]


@pytest.fixture
def recording(tmp_path: Path) -> Iterator[Recording]:
    made = Recording(tmp_path)
    yield made
    made.close()


def test_an_order_takes_the_next_frames_of_its_slot_and_completes(recording: Recording) -> None:
    recording.recorder.start_order(order("cap-00000000000a", count=5))
    for start in range(0, 12, 4):
        recording.feed(frames(4, first=start))
    wait_for(lambda: recording.said("cap-00000000000a", "complete"), 10, "the capture to complete")
    kept = recording.store.get("cap-00000000000a")
    assert kept.status == "complete"
    assert [f.frame for f in kept.files] == [f"frame-{i}" for i in range(5)]
    assert kept.model == REF
    assert recording.steps() == [("cap-00000000000a", "started"), ("cap-00000000000a", "complete")]


def test_an_order_seen_again_is_not_captured_twice(recording: Recording) -> None:
    recording.recorder.start_order(order("cap-00000000000b", count=2))
    recording.feed(frames(2))
    wait_for(lambda: recording.phase("cap-00000000000b") == "finished", 10, "the capture to finish")
    recording.recorder.start_order(order("cap-00000000000b", count=2))
    recording.feed(frames(2, first=10))
    assert [f.frame for f in recording.store.get("cap-00000000000b").files] == ["frame-0", "frame-1"]


def test_orders_of_one_slot_run_one_after_the_other(recording: Recording) -> None:
    recording.recorder.start_order(order("cap-00000000000c", count=2))
    recording.recorder.start_order(order("cap-00000000000d", count=2))
    for start in range(0, 8, 2):
        recording.feed(frames(2, first=start))
        wait_for(lambda: recording.recorder.idle, 10, "the queued frames to be written")
    wait_for(lambda: recording.phase("cap-00000000000d") == "finished", 10, "the second capture to finish")
    assert [f.frame for f in recording.store.get("cap-00000000000c").files] == ["frame-0", "frame-1"]
    assert [f.frame for f in recording.store.get("cap-00000000000d").files] == ["frame-2", "frame-3"]


def test_an_order_for_a_missing_or_text_slot_is_refused_with_the_reason(recording: Recording) -> None:
    recording.recorder.start_order(order("cap-00000000000e", slot="lens"))
    recording.recorder.start_order(order("cap-00000000000f", slot="notes"))
    missing, text = recording.store.get("cap-00000000000e"), recording.store.get("cap-00000000000f")
    assert (missing.phase, missing.status) == ("finished", "refused")
    assert missing.reason == "slot lens is not on this gateway (slots: defect, notes)"
    assert text.reason == "slot notes runs a text model; captures take camera frames"
    assert [e.level for e in recording.events] == ["warning", "warning"]


def test_a_capture_stopped_by_its_byte_cap_keeps_what_it_has_and_says_why(recording: Recording) -> None:
    recording.recorder.start_order(order("cap-000000000010", count=50, max_bytes=40_000))
    for start in range(0, 20, 4):
        recording.feed(frames(4, first=start))
        wait_for(lambda: recording.recorder.idle, 10, "the queued frames to be written")
    wait_for(lambda: recording.said("cap-000000000010", "stopped"), 10, "the capture to stop")
    kept = recording.store.get("cap-000000000010")
    assert kept.status == "stopped"
    assert 0 < len(kept.files) < 50
    assert kept.bytes <= 40_000
    assert kept.reason is not None
    assert "byte cap of 40000 bytes is reached" in kept.reason


def test_a_restart_resumes_a_capture_where_it_stopped(tmp_path: Path) -> None:
    """Fault: the agent stops mid-capture. Promise: the frames taken are kept and the capture goes
    on with the next frames after the restart, never starting over or doubling one."""
    first = Recording(tmp_path)
    first.recorder.start_order(order("cap-000000000011", count=4))
    first.feed(frames(2))
    wait_for(lambda: len(first.store.get("cap-000000000011").files) == 2, 10, "two frames written")
    first.close()

    second = Recording(tmp_path)
    try:
        second.feed(frames(4, first=100))
        wait_for(lambda: second.phase("cap-000000000011") == "finished", 10, "the capture to finish")
        kept = second.store.get("cap-000000000011")
        assert [f.frame for f in kept.files] == ["frame-0", "frame-1", "frame-100", "frame-101"]
        assert [f.name for f in kept.files] == ["000001.png", "000002.png", "000003.png", "000004.png"]
    finally:
        second.close()


def test_a_drift_capture_takes_frames_near_the_threshold_and_a_sample_of_the_rest(tmp_path: Path) -> None:
    recording = Recording(tmp_path, rng=random.Random(7))
    try:
        selector = Selector(near_threshold=0.1, sample_rate=0.2)
        started = recording.recorder.start_drift_capture(
            "cap-000000000012", "defect", 100, 1 << 24, selector, "drift confirmed", "gateway:gw-1 (drift)"
        )
        assert started
        assert not recording.recorder.start_drift_capture(
            "cap-000000000013", "defect", 30, 1 << 24, selector, "again", "gateway:gw-1 (drift)"
        )  # one drift capture per slot at a time
        batch = frames(200)
        # Every tenth part sits at the threshold (probability 0.5); the others are clearly good.
        scores = [0.5 if i % 10 == 0 else 0.02 for i in range(200)]
        predictions = [
            Prediction(f, DefectOutput(label="good", is_defect=False, score=1 - p), 1.0)
            for f, p in zip(batch, scores, strict=True)
        ]
        for start in range(0, 200, 8):
            recording.feed(batch[start : start + 8], predictions[start : start + 8])
            wait_for(lambda: recording.recorder.idle, 10, "the queued frames to be written")
        kept = recording.store.get("cap-000000000012")
        taken = [int(f.frame.removeprefix("frame-")) for f in kept.files]
        near = [i for i in taken if i % 10 == 0]
        assert near == list(range(0, 200, 10))  # every frame at the threshold
        assert 0.1 * 180 < len(taken) - len(near) < 0.35 * 180  # and a fifth of the others
        assert kept.origin == "drift"
        assert kept.selector == selector
    finally:
        recording.close()
