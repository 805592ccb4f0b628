"""The outbox's two streams: events beside results, acks per stream, and shedding by priority."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from edge_agent.outbox import EventDraft, Outbox, ShedReport
from tests.support.outbox import result_drafts


def _events(n: int, prefix: str = "e", pad: int = 0) -> list[EventDraft]:
    return [
        EventDraft(kind="ota", level="error", message=f"{prefix}{i}", details={"n": i, "pad": "x" * pad})
        for i in range(n)
    ]


def _sizes(tmp_path: Path, pad: int = 0) -> tuple[int, int]:
    """Bytes of one result item and of one event item, as stored."""
    probe = Outbox(tmp_path / f"probe{pad}.db", 1 << 20)
    probe.append(result_drafts(1))
    probe.append_events(_events(1, pad=pad))
    sizes = probe.results.stats()[1], probe.events.stats()[1]
    probe.close()
    return sizes


def test_events_have_their_own_stream_and_seqs_and_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path, 1 << 20)
    assert box.events.stream != box.results.stream
    assert len(box.events.stream) == 32
    assert box.append(result_drafts(3)) == [1, 2, 3]
    assert box.append_events(_events(2)) == [1, 2]
    assert box.append(result_drafts(1)) == [4]
    box.events.mark_sent([1])
    streams = box.results.stream, box.events.stream
    ids = [e.event_item().id for e in box.events.read_after(0, 10)]
    box.close()

    box = Outbox(path, 1 << 20)
    assert (box.results.stream, box.events.stream) == streams
    items = [e.event_item() for e in box.events.read_after(0, 10)]
    assert [(i.seq, i.message, i.kind, i.level) for i in items] == [
        (1, "e0", "ota", "error"),
        (2, "e1", "ota", "error"),
    ]
    assert [i.id for i in items] == ids  # a re-send carries the same id, so the cloud stores it once
    assert [i.replayed for i in items] == [True, False]
    assert box.stats()[0] == 4  # results only
    assert box.total_stats()[0] == 6
    assert box.append_events(_events(1)) == [3]
    box.close()


def test_acks_apply_to_the_stream_they_name(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", 1 << 20)
    box.append(result_drafts(5))
    box.append_events(_events(3))
    assert box.ack(box.events.stream, 2) == 2
    assert box.events.acked_seq == 2
    assert box.results.acked_seq == 0  # the results stream's seq 2 is not covered by it
    assert [e.seq for e in box.read_after(0, 10)] == [1, 2, 3, 4, 5]
    assert box.ack(box.results.stream, 4) == 4
    assert [e.seq for e in box.events.read_after(0, 10)] == [3]
    assert box.ack(uuid.uuid4().hex, 99) == 0  # neither stream
    assert box.ack(box.events.stream, 50) == 1  # beyond what was assigned: clamped
    assert box.events.acked_seq == 3
    assert box.total_stats()[0] == 1
    box.close()


def test_over_the_cap_results_are_shed_before_any_event(tmp_path: Path) -> None:
    result_size, event_size = _sizes(tmp_path)
    reports: list[ShedReport] = []
    cap = 4 * result_size + 2 * event_size + 10
    box = Outbox(tmp_path / "outbox.db", cap, on_shed=reports.append)
    box.append(result_drafts(4))
    box.append_events(_events(2))
    assert not reports
    box.append_events(_events(2, prefix="late"))  # two more alarms: results make room for them
    need = -(-(2 * event_size - 10) // result_size)  # results it takes to free two events' bytes
    assert need < 4, "the test needs results left over after the shedding"
    assert [(r.kind, r.first_seq, r.last_seq) for r in reports] == [("results", 1, need)]
    assert reports[0].stream == box.results.stream
    assert [e.seq for e in box.events.read_after(0, 10)] == [1, 2, 3, 4]
    assert [e.seq for e in box.read_after(0, 10)] == list(range(need + 1, 5))
    assert box.total_stats()[1] <= cap
    assert (box.shed_total, box.events.shed_total) == (need, 0)
    box.close()


def test_events_are_shed_oldest_first_only_when_no_result_is_left(tmp_path: Path) -> None:
    result_size, event_size = _sizes(tmp_path, pad=800)
    assert event_size > result_size + 10, "the test needs an event bigger than a result"
    reports: list[ShedReport] = []
    cap = result_size + 3 * event_size + 10
    box = Outbox(tmp_path / "outbox.db", cap, on_shed=reports.append)
    box.append(result_drafts(1))
    box.append_events(_events(3, pad=800))
    assert not reports
    box.append_events(_events(1, prefix="late", pad=800))
    # The one result goes first; that is not enough, so the oldest event follows.
    assert [(r.kind, r.count, r.first_seq, r.last_seq) for r in reports] == [
        ("results", 1, 1, 1),
        ("events", 1, 1, 1),
    ]
    assert reports[1].stream == box.events.stream
    assert [e.event_item().message for e in box.events.read_after(0, 10)] == ["e1", "e2", "late0"]
    assert box.total_stats() == (3, box.events.stats()[1])
    assert box.total_stats()[1] <= cap
    assert (box.shed_total, box.events.shed_total) == (1, 1)
    box.close()


def test_an_invalid_event_is_refused_naming_the_field_and_nothing_is_stored(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", 1 << 20)
    with pytest.raises(ValidationError, match="kind"):
        box.append_events([EventDraft(kind="not a name!", level="info", message="x")])
    with pytest.raises(ValidationError, match="details"):
        box.append_events([EventDraft(kind="ota", level="info", message="x", details={"k": "nul\x00"})])
    assert box.events.last_seq == 0
    assert box.append_events(_events(1)) == [1]
    box.close()
