"""The Overview: a tile per line (parcel lines too, throughput at start-up), and its stream of summaries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from protocol.topics import Channel
from tests.support.console import (
    ORIGIN,
    Console,
    login,
    seed_parcels,
)
from tests.support.messages import batch, item, new_stream, note, state
from tests.support.testclient import TestClient


def test_overview_tile_of_a_parcel_line_shows_the_damaged_rate(console: Console) -> None:
    seed_parcels(console)
    login(console.client, "vera")
    summary = _summary(console.client)
    tile = summary["line-3"]
    assert (tile["parcels"], tile["damaged_hour"]) == (True, 1)
    assert tile["damaged_rate"] == pytest.approx(0.25)
    assert [v for v in tile["series"] if v is not None] == [0.0, 0.0, 0.0, 1.0]
    assert summary["line-1"]["parcels"] is False
    page = console.client.get("/").text
    card = next(c for c in page.split('<div class="tile card"') if c.startswith(' data-line="line-3"'))
    assert "Damaged parcels (1 h)" in card
    assert '<span data-k="damaged_rate">25.0%</span>' in card
    assert "damaged parcels, last hour" in card
    assert "defect rate, last hour" in page[page.index('data-line="line-1"') :]


def _summary(client: TestClient) -> dict[str, dict[str, object]]:
    answer = client.get("/console/events?limit=1")
    data = next(x for x in answer.text.split("\n") if x.startswith("data: "))
    return {t["line"]: t for t in json.loads(data.removeprefix("data: "))["lines"]}


def test_throughput_at_start_up_is_divided_by_the_time_covered(console: Console) -> None:
    """Ten results over the last two minutes are about 5/min, not 10 over a five-minute window."""
    now = datetime.now(UTC)
    fresh = [item(s, line="line-4", at=now - timedelta(seconds=118 - 12 * (s - 1))) for s in range(1, 11)]
    console.ingest("gw-n", Channel.STATE, state("gw-n", True, 1, line="line-4"))
    console.ingest("gw-n", Channel.RESULTS, batch("gw-n", new_stream(), fresh))
    login(console.client, "vera")
    rate = _summary(console.client)["line-4"]["throughput_per_min"]
    assert isinstance(rate, float)
    assert 4.0 < rate <= 5.1
    # A line reporting for longer than the window averages over the whole window: 1 result in 5 min.
    older = [item(s, line="line-5", at=now - timedelta(minutes=m)) for s, m in ((1, 10), (2, 2))]
    console.ingest("gw-o", Channel.STATE, state("gw-o", True, 1, line="line-5"))
    console.ingest("gw-o", Channel.RESULTS, batch("gw-o", new_stream(), older))
    assert _summary(console.client)["line-5"]["throughput_per_min"] == pytest.approx(0.2)


def test_a_lines_notes_are_counted_apart_from_its_results_and_linked_from_its_tile(console: Console) -> None:
    now = datetime.now(UTC)
    # line-7: a camera (one part 20 min ago, four in the last five minutes) and maintenance notes
    # (one 30 min ago, two in the last five minutes, one urgent); no time near the five-minute edge.
    parts = [item(s, line="line-7", at=now - timedelta(minutes=m)) for s, m in enumerate((20, 4, 3, 2, 1), 1)]
    notes = [
        note(s, f"note {s}", line="line-7", at=now - timedelta(minutes=m), urgency=u)
        for s, (m, u) in enumerate(((30, "low"), (3.5, "high"), (2.5, "medium")), start=6)
    ]
    console.ingest("gw-n", Channel.STATE, state("gw-n", True, 1, line="line-7"))
    console.ingest("gw-n", Channel.RESULTS, batch("gw-n", new_stream(), parts + notes))
    login(console.client, "vera")
    tile = _summary(console.client)["line-7"]
    # The camera's figures alone: 5 parts in the hour, 4 in five minutes (with the notes: 1.2/min).
    assert (tile["results_hour"], tile["throughput_per_min"]) == (5, 0.8)
    # The notes have their own.
    assert (tile["notes"], tile["notes_hour"], tile["notes_per_min"], tile["urgent_notes_hour"]) == (
        True, 3, 0.4, 1
    )  # fmt: skip
    page = console.client.get("/").text
    card = next(c for c in page.split('<div class="tile card"') if c.startswith(' data-line="line-7"'))
    assert '<a class="tile-link" href="/lines/line-7">line-7</a>' in card
    assert '<span data-k="notes_hour">3</span>' in card
    assert '<span data-k="urgent_notes_hour">1</span> high urgency' in card
    assert '<a class="tile-notes" href="/lines/line-7/notes">Maintenance notes of line-7</a>' in card
    line2 = next(c for c in page.split('<div class="tile card"') if c.startswith(' data-line="line-2"'))
    assert "tile-notes" not in line2


def test_events_stream_pushes_a_summary_per_line(console: Console) -> None:
    client = console.client
    login(client, "vera")
    answer = client.get("/console/events?limit=2")
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = [chunk for chunk in answer.text.split("\n\n") if chunk]
    assert len(events) == 2
    kind, data = events[0].split("\n")
    assert kind == "event: summary"
    summary = json.loads(data.removeprefix("data: "))
    tiles = {t["line"]: t for t in summary["lines"]}
    assert set(tiles) == {"line-1", "line-2"}
    assert tiles["line-1"]["results_hour"] == 6
    assert tiles["line-1"]["defect_rate"] == pytest.approx(0.5)
    assert tiles["line-1"]["gateways_online"] == 1
    assert tiles["line-2"]["gateways_offline"] == 1
    assert summary["alerts_available"] is True


def test_events_stream_ends_with_gone_when_the_token_is_revoked(console: Console) -> None:
    client = console.client
    login(client, "vera")
    with client.stream("GET", "/console/events?limit=50") as stream:
        lines = stream.iter_lines()
        assert next(lines) == "event: summary"
        client.post("/logout", headers=ORIGIN)
        seen = [line for line in lines if line.startswith("event:")]
    # Logout revoked the token the open stream was using: it says so and ends, long before 50 events.
    assert seen[-1] == "event: gone"
    assert len(seen) < 49
