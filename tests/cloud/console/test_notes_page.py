"""A line's Notes page: its maintenance notes newest first with their words, category and urgency,
high urgency highlighted, filters kept in the live stream's URL, and the stream of new notes."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from protocol.topics import Channel
from tests.support.console import CONSOLE_NOTES, Console, login, seed_notes
from tests.support.console_live import Live, read_event
from tests.support.messages import batch, new_stream, note


def _notes(page: str) -> list[tuple[str, str, str, str]]:
    """(class, urgency badge, category, text) of each listed note, in page order."""
    found = re.findall(
        r'<li class="([^"]+)" data-id="[^"]+".*?<span class="badge urgency[^"]*">([^<]+)</span>\s*'
        r'<span class="category">([^<]+)</span>.*?<p class="note-text">([^<]*(?:<(?!/p>)[^<]*)*)</p>',
        page,
        re.S,
    )
    return [(cls, badge, category, text) for cls, badge, category, text in found]


def test_notes_page_lists_the_lines_notes_newest_first_with_words_category_and_urgency(
    console: Console,
) -> None:
    seed_notes(console.ingest)
    login(console.client, "vera")
    page = console.client.get("/lines/line-1/notes").text
    assert _notes(page) == [
        ("note urgent", "high urgency", "safety", "Emergency stop on cell 2 does not latch"),
        ("note", "medium urgency", "hydraulic_pneumatic", "Air leak at valve block V2"),
        ("note urgent", "high urgency", "electrical", "Sparks at drive 4 - isolate now"),
        # A note's words are shown as text, never as markup.
        ("note", "low urgency", "mechanical", "Chain guard &lt;b&gt;loose&lt;/b&gt; &amp; rattling"),
    ]
    figures = re.search(r'data-part="figures">(.*?)</p>', page, re.S)
    assert figures is not None
    assert "Last 24 h on this line: 4 notes," in figures.group(1)
    assert "2 of high urgency" in figures.group(1)
    assert 'data-live="/console/lines/line-1/notes/events"' in page
    assert '<a href="/lines/line-1">Back to line line-1</a>' in page


def test_notes_page_filters_by_category_and_urgency_and_its_stream_keeps_them(console: Console) -> None:
    seed_notes(console.ingest)
    login(console.client, "vera")
    urgent = console.client.get("/lines/line-1/notes?urgency=high").text
    assert [n[3] for n in _notes(urgent)] == [CONSOLE_NOTES[3][1], CONSOLE_NOTES[1][1]]
    assert 'data-live="/console/lines/line-1/notes/events?urgency=high"' in urgent
    assert '<option value="high" selected>high</option>' in urgent
    both = console.client.get("/lines/line-1/notes?category=electrical&urgency=high").text
    assert [n[3] for n in _notes(both)] == ["Sparks at drive 4 - isolate now"]
    assert 'data-live="/console/lines/line-1/notes/events?category=electrical&amp;urgency=high"' in both
    none = console.client.get("/lines/line-1/notes?category=safety&urgency=low").text
    assert _notes(none) == []
    assert "No notes of category &#39;safety&#39; and urgency &#39;low&#39; on this line yet." in none
    # "any" (an empty choice) filters nothing.
    assert len(_notes(console.client.get("/lines/line-1/notes?category=&urgency=").text)) == 4


def test_notes_page_of_an_unknown_line_says_so(console: Console) -> None:
    login(console.client, "vera")
    answer = console.client.get("/lines/line-9/notes")
    assert answer.status_code == 404
    assert "There is no line &#39;line-9&#39;" in answer.text


def test_notes_stream_needs_a_login(console: Console) -> None:
    assert console.client.get("/console/lines/line-1/notes/events?limit=1").status_code == 401


def test_notes_stream_sends_only_new_notes_that_pass_its_filter(live: Live) -> None:
    seed_notes(lambda gw, channel, msg: live.ingest(gw, channel, msg))
    login(live.client, "vera")
    with live.client.stream("GET", "/console/lines/line-1/notes/events?urgency=high&limit=5") as stream:
        lines = stream.iter_lines()
        kind, first = read_event(lines)
        assert kind == "notes"
        # The page's notes first, oldest first (the page prepends each in turn).
        assert [_notes(n["html"])[0][3] for n in first["notes"]] == [
            "Sparks at drive 4 - isolate now",
            "Emergency stop on cell 2 does not latch",
        ]
        assert "4 notes" in first["parts"]["figures"]
        assert first["keep"] == 50
        now = datetime.now(UTC)
        calm = note(1, "Lamp flickers at station 3", at=now, urgency="low")
        fire = note(2, "Fire in the paint booth", at=now, category="safety", urgency="high")
        live.ingest("gw-a", Channel.RESULTS, batch("gw-a", new_stream(), [calm, fire]))
        kind, second = read_event(lines)
    assert kind == "notes"
    assert [n["id"] for n in second["notes"]] == [str(fire.id)]  # the low one does not pass the filter
    assert '<li class="note urgent"' in second["notes"][0]["html"]
    assert "Fire in the paint booth" in second["notes"][0]["html"]
    assert "6 notes" in second["parts"]["figures"]  # the line's counts are of every note
    assert "3 of high urgency" in second["parts"]["figures"]
