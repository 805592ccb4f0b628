"""Drift watch of parcel and notes slots in the gateway's pipeline: the bundled releases, their
attached references, a worker feeding its slot's watch, transitions as model_drift events on the
outbox, the slot's gauges and its telemetry verdict.

Seed 64_102 is used by neither the releases' training, their references (61_000-62_003) nor the
figures of ``bench.drift_streams`` (65_000 on).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import generate_latest

import domain_models.notes
import domain_models.parcels
from domain_models.drift_sets import parcel_frames
from edge_agent.drift_watch import DriftWatch
from edge_agent.frames import DropPolicy, Frame, FrameQueue
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox
from edge_agent.pipeline import InferenceWorker
from edge_agent.runtime import build_runner
from protocol.drift import DRIFT_EVENT_KIND, PARCEL_SIGNALS
from protocol.messages import EventItem, utcnow
from simulators.notes_line import NotesLine
from tests.support.waiting import wait_for

ARTIFACTS = Path(domain_models.parcels.__file__).parent / "artifacts"
PARCELS = ARTIFACTS / "parcel-detector-1.1.0.manifest.json"
NOTES = Path(domain_models.notes.__file__).parent / "artifacts" / "notes-minilm-1.1.0.manifest.json"
SEED = 64_102
WINDOW, STEP = 100, 20  # the bundled references'


class Slot:
    """One slot as the agent runs it: a worker on the release, its drift watch, an outbox, metrics."""

    def __init__(self, tmp_path: Path, manifest: Path, slot: str) -> None:
        self.stop = threading.Event()
        self.queue = FrameQueue(16, self.stop)
        self.outbox = Outbox(tmp_path / "outbox.db", 1 << 24)
        self.metrics = Metrics()
        self.watch = DriftWatch(slot, self.metrics, lambda draft: self.outbox.append_events([draft]))
        runner = build_runner(manifest, slot, 1)
        self.worker = InferenceWorker(
            runner, self.queue, self.outbox, self.metrics, self.stop, "line-1", "main", 8, 50,
            drift=self.watch,
        )  # fmt: skip
        self.worker.start()

    def feed(self, frames: Sequence[Frame]) -> None:
        """Queue ``frames`` in order and wait until the worker has run them all."""
        for frame in frames:
            self.queue.put(frame, DropPolicy.BLOCK)
        wait_for(lambda: self.queue.idle, 120, "every input inferred")

    def events(self) -> list[EventItem]:
        return [entry.event_item() for entry in self.outbox.events.read_after(0, 100)]

    def gauges(self) -> str:
        return generate_latest(self.metrics.registry).decode()

    def close(self) -> None:
        self.stop.set()
        assert self.worker.join(10)
        self.outbox.close()


@pytest.fixture
def parcels(tmp_path: Path) -> Iterator[Slot]:
    slot = Slot(tmp_path, PARCELS, "parcels")
    yield slot
    slot.close()


@pytest.fixture
def notes(tmp_path: Path) -> Iterator[Slot]:
    slot = Slot(tmp_path, NOTES, "notes")
    yield slot
    slot.close()


def _images(unseen: bool, count: int) -> list[Frame]:
    now = utcnow()
    return [Frame("cam", f"{i}", now, image) for i, image in enumerate(parcel_frames((SEED,), count, unseen))]


def _notes(german: float, count: int, start: int = 0) -> list[Frame]:
    now, empty = utcnow(), np.empty((0,), np.uint8)
    line = NotesLine(SEED, german=german)
    return [Frame("notes", f"{n.index}", now, empty, n.text) for n in line.notes(count, start)]


@pytest.mark.slow
def test_a_parcel_slot_reports_a_new_belt_and_light_as_events_a_gauge_and_its_verdict(
    parcels: Slot,
) -> None:
    # A full window of the usual look, then the camera looks at a green belt under flickering light.
    parcels.feed(_images(unseen=False, count=WINDOW))
    assert parcels.events() == []
    parcels.feed(_images(unseen=True, count=3 * STEP + 20))
    events = parcels.events()
    assert [(e.kind, e.details["transition"], e.level) for e in events] == [
        (DRIFT_EVENT_KIND, "suspected", "info"),
        (DRIFT_EVENT_KIND, "confirmed", "warning"),
    ]
    details = events[-1].details
    assert (details["slot"], details["model"], details["cause"]) == (
        "parcels",
        "parcel-detector 1.1.0",
        "look",
    )
    assert "tint:up" in str(details["moved"]).split(",")
    for signal in PARCEL_SIGNALS:  # the detector's figures ride along, against their thresholds
        assert f"{signal}_statistic" in details
        assert f"{signal}_threshold" in details
    assert "slot parcels: parcel-detector 1.1.0: drift confirmed" in events[-1].message
    assert 'model_drift_state{slot="parcels"} 2.0' in parcels.gauges()
    assert 'model_drift_ratio{signal="unread",slot="parcels"}' in parcels.gauges()
    status = parcels.watch.status()
    assert status is not None
    assert (status.slot, status.state, status.frames) == ("parcels", "confirmed", WINDOW)
    assert "tint" in status.moved
    assert status.ratio > 1.0


def test_a_notes_slot_reports_another_sites_shorthand_and_clears_when_the_usual_notes_return(
    notes: Slot,
) -> None:
    notes.feed(_notes(german=0.0, count=WINDOW))
    notes.feed(_notes(german=1.0, count=WINDOW, start=WINDOW))
    notes.feed(_notes(german=0.0, count=2 * WINDOW, start=2 * WINDOW))
    events = notes.events()
    assert [e.details["transition"] for e in events] == ["suspected", "confirmed", "cleared"]
    confirmed = events[1].details
    assert (confirmed["slot"], confirmed["model"], confirmed["cause"]) == (
        "notes",
        "notes-minilm 1.1.0",
        "look",
    )
    assert "centroid:up" in str(confirmed["moved"]).split(",")
    assert float(str(confirmed["centroid_statistic"])) > float(str(confirmed["centroid_threshold"]))
    assert 'model_drift_state{slot="notes"} 0.0' in notes.gauges()  # cleared
    status = notes.watch.status()
    assert status is not None
    assert (status.state, status.moved) == ("ok", ())


def test_an_unchanged_notes_stream_raises_nothing(notes: Slot) -> None:
    notes.feed(_notes(german=0.0, count=WINDOW + 5 * STEP))
    assert notes.events() == []
    assert 'model_drift_state{slot="notes"} 0.0' in notes.gauges()
    status = notes.watch.status()
    assert status is not None
    assert (status.state, status.frames) == ("ok", WINDOW)
