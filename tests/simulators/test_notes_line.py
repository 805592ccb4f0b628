"""The notes line: reproducible, labelled, shop-floor shaped notes."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from pathlib import Path

from protocol.inference import NOTE_CATEGORIES, NOTE_URGENCIES
from simulators.notes_line import NotesLine, stream_notes, write_notes


def test_a_note_depends_only_on_seed_and_index() -> None:
    line = NotesLine(seed=5)
    forward = [line.note(i) for i in range(50)]
    backward = [NotesLine(seed=5).note(i) for i in reversed(range(50))][::-1]
    assert forward == backward
    assert [n.text for n in NotesLine(seed=6).notes(50)] != [n.text for n in forward]


def test_every_category_and_urgency_appears_in_a_short_stream() -> None:
    notes = NotesLine(seed=0).notes(600)
    categories = Counter(n.category for n in notes)
    urgencies = Counter(n.urgency for n in notes)
    assert set(categories) == set(NOTE_CATEGORIES)
    assert set(urgencies) == set(NOTE_URGENCIES)
    # Roughly balanced: no class under half its fair share, so no head trains on a sliver.
    assert min(categories.values()) > 0.5 * 600 / len(NOTE_CATEGORIES)
    assert min(urgencies.values()) > 0.5 * 600 / len(NOTE_URGENCIES)


def test_notes_are_terse_with_numbers_and_some_typos() -> None:
    notes = NotesLine(seed=1).notes(400)
    words = [len(n.text.split()) for n in notes]
    assert 3 <= sum(words) / len(words) <= 16
    assert max(words) <= 30
    assert sum(bool(re.search(r"\d", n.text)) for n in notes) > 0.3 * len(notes)
    texts = [n.text.lower() for n in notes]
    vocabulary = {w for t in texts for w in t.split()}
    assert len(vocabulary) > 300  # many words, not a handful of fixed sentences


def test_write_notes_puts_one_file_per_note_and_the_truth_beside_them(tmp_path: Path) -> None:
    notes = NotesLine(seed=2).notes(5, start=10)
    truth = write_notes(tmp_path, notes)
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    assert [r["file"] for r in rows] == [f"note-{i:06d}.txt" for i in range(10, 15)]
    for row, note in zip(rows, notes, strict=True):
        assert (tmp_path / row["file"]).read_text().strip() == note.text
        assert (row["category"], row["urgency"]) == (note.category, note.urgency)


def test_stream_writes_whole_notes_at_the_rate_and_stops_on_request(tmp_path: Path) -> None:
    stop = threading.Event()
    written = stream_notes(tmp_path, NotesLine(seed=3), rate_per_s=200.0, stop=stop, count=5)
    assert written == 5
    assert sorted(p.name for p in tmp_path.glob("*.txt")) == [f"note-{i:06d}.txt" for i in range(5)]
    assert not list(tmp_path.glob(".*.tmp"))  # written under a temporary name, then renamed
    assert len((tmp_path / "truth.jsonl").read_text().splitlines()) == 5
    stop.set()
    assert stream_notes(tmp_path / "later", NotesLine(seed=3), rate_per_s=1.0, stop=stop) == 0
