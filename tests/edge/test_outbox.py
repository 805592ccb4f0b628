"""Durable outbox: persistence, monotonic seq across restarts, cumulative acks, byte-cap shedding."""

from __future__ import annotations

import uuid
from pathlib import Path

from edge_agent.outbox import Outbox, ShedReport
from tests.support.outbox import result_drafts


def test_items_and_stream_survive_reopen_and_seq_keeps_rising(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path, 1 << 20)
    stream = box.stream
    assert len(stream) == 32
    assert box.append(result_drafts(3)) == [1, 2, 3]
    box.mark_sent([1])
    box.close()

    box = Outbox(path, 1 << 20)
    assert box.stream == stream
    entries = box.read_after(0, 10)
    assert [e.seq for e in entries] == [1, 2, 3]
    items = [e.item() for e in entries]
    assert [i.frame for i in items] == ["f0", "f1", "f2"]
    assert [i.replayed for i in items] == [True, False, False]  # seq 1 had been published
    assert box.ack(stream, 3) == 3
    assert box.stats() == (0, 0)
    box.close()

    box = Outbox(path, 1 << 20)
    assert box.acked_seq == 3
    assert box.append(result_drafts(2)) == [4, 5]  # never reuses a seq, even with the table empty
    box.close()


def test_ack_deletes_only_covered_items_and_other_streams_are_ignored(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", 1 << 20)
    box.append(result_drafts(5))
    assert box.ack(uuid.uuid4().hex, 5) == 0
    assert box.stats()[0] == 5
    assert box.ack(box.stream, 2) == 2
    assert [e.seq for e in box.read_after(0, 10)] == [3, 4, 5]
    assert box.ack(box.stream, 1) == 0  # an older ack changes nothing
    assert box.acked_seq == 2
    assert box.ack(box.stream, 99) == 3  # beyond what was assigned: clamped, not trusted
    assert box.acked_seq == 5
    box.append(result_drafts(1))
    assert [e.seq for e in box.read_after(box.acked_seq, 10)] == [6]
    box.close()


def test_read_after_respects_limit_and_byte_budget(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", 1 << 20)
    box.append(result_drafts(10))
    assert [e.seq for e in box.read_after(3, 4)] == [4, 5, 6, 7]
    size = box.read_after(0, 1)[0].size
    assert len(box.read_after(0, 10, max_bytes=size * 3 + 1)) == 3
    assert len(box.read_after(0, 10, max_bytes=1)) == 1  # always at least one item
    box.close()


def test_byte_cap_sheds_oldest_and_says_so(tmp_path: Path) -> None:
    reports: list[ShedReport] = []
    probe = Outbox(tmp_path / "probe.db", 1 << 20)
    probe.append(result_drafts(1))
    item_size = probe.stats()[1]
    probe.close()

    box = Outbox(tmp_path / "outbox.db", item_size * 5 + item_size // 2, on_shed=reports.append)
    box.append(result_drafts(4))
    assert not reports
    box.append(result_drafts(4, frame_prefix="g"))
    depth, size = box.stats()
    assert depth == 5
    assert size <= box.max_bytes
    assert [(r.count, r.first_seq, r.last_seq, r.stream) for r in reports] == [(3, 1, 3, box.stream)]
    assert box.shed_total == 3
    assert [e.seq for e in box.read_after(0, 10)] == [4, 5, 6, 7, 8]
    box.close()
    reopened = Outbox(tmp_path / "outbox.db", box.max_bytes)
    assert reopened.stats() == (depth, size)
    reopened.close()
