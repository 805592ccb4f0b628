"""The Line page: charts, defects, the gallery and its pictures, parcel lines, and its live stream (SSE)
with real ingested data."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import numpy as np

from cloud.console.line_view import box_style as _box_style
from cloud.console.render import templates
from edge_agent.thumbnails import ThumbnailConfig, encode_thumbnail
from protocol.messages import Box, DefectOutput, ParcelOutput
from protocol.topics import Channel
from tests.support.console import (
    ORIGIN,
    PARCEL_BARCODE,
    Console,
    anomaly_result,
    login,
    seed_notes,
    seed_parcels,
)
from tests.support.console_live import Live, events_of, read_event
from tests.support.messages import batch, item, new_stream


def test_line_page_is_wired_to_its_stream(live: Live) -> None:
    login(live.client, "vera")
    page = live.client.get("/lines/line-1?range=6h").text
    assert 'data-live="/console/lines/line-1/events?range=6h"' in page
    assert '<script src="/console/static/live.js"' in page
    assert f'data-id="{live.seeded.thumbnail_result}"' in page
    script = live.client.get("/console/static/live.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "EventSource" in script.text


def test_line_stream_sends_the_page_then_only_new_results(live: Live) -> None:
    client = live.client
    assert client.get("/console/lines/line-1/events?limit=1").status_code == 401
    login(client, "vera")
    with client.stream("GET", "/console/lines/line-1/events?limit=3") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        kind, first = read_event(lines)
        assert kind == "line"
        assert "6 results · 3 defects · defect rate 50.0%" in first["parts"]["totals"]
        assert "<svg" in first["parts"]["charts"]
        assert "<td>scratch</td><td>2</td>" in first["parts"]["breakdown"]
        # The whole gallery first (oldest first, as the page prepends), the seeded picture with its box.
        pictures = {g["id"]: g["html"] for g in first["gallery"]}
        assert len(pictures) == 3  # the three seeded defects
        assert 'href="/console/thumbnails/' in pictures[live.seeded.thumbnail_result]
        assert first["keep"] == 24

        # A new defect with its picture arrives through ingest while the stream is open.
        box = Box(x=100, y=60, w=40, h=20)
        frame = np.full((240, 320, 3), 90, dtype=np.uint8)
        jpeg = encode_thumbnail(frame, box, ThumbnailConfig(margin=0.5))  # as the agent does, geometry inside
        assert jpeg is not None
        new = item(1, at=datetime.now(UTC), defect=True, label="dent").model_copy(
            update={
                "thumbnail_jpeg": base64.b64encode(jpeg).decode(),
                "output": DefectOutput(label="dent", is_defect=True, score=0.8, box=box),
            }
        )
        live.ingest("gw-a", Channel.RESULTS, batch("gw-a", new_stream(), [new]))
        kind, second = read_event(lines)
    assert kind == "line"
    assert "7 results · 4 defects" in second["parts"]["totals"]
    assert "<td>dent</td><td>2</td>" in second["parts"]["breakdown"]
    # Only the new picture goes out: the one already sent is not sent again.
    assert [g["id"] for g in second["gallery"]] == [str(new.id)]
    assert 'alt="defect dent"' in second["gallery"][0]["html"]
    # The anomaly box sits inside its crop (box + 50% margin each side: a quarter in, half wide).
    assert 'class="box" style="left:25.0%;top:25.0%;width:50.0%;height:50.0%"' in second["gallery"][0]["html"]


def test_line_page_counts_notes_apart_and_links_to_them(live: Live) -> None:
    login(live.client, "vera")
    assert 'data-part="notes"></p>' in live.client.get("/lines/line-1").text  # no notes yet: nothing said
    with live.client.stream("GET", "/console/lines/line-1/events?range=7d&limit=50") as stream:
        lines = stream.iter_lines()
        _, first = read_event(lines)
        assert first["parts"]["notes"] == ""
        seed_notes(lambda gw, channel, msg: live.ingest(gw, channel, msg))
        _, second = read_event(lines)
    notes = second["parts"]["notes"]
    assert "Maintenance notes in this range: 4," in notes
    assert "2 of high urgency" in notes
    assert '<a href="/lines/line-1/notes">View notes</a>' in notes
    # The camera's totals did not take the notes in: 6 results, as before.
    assert "totals" not in second["parts"]
    assert "6 results · 3 defects" in live.client.get("/lines/line-1").text


def test_line_stream_sends_a_damaged_parcel_to_the_gallery(live: Live) -> None:
    """A damaged parcel is flagged but no defect: the defect count stays, the gallery still gets it."""
    login(live.client, "vera")
    with live.client.stream("GET", "/console/lines/line-1/events?range=7d&limit=50") as stream:
        lines = stream.iter_lines()
        _, first = read_event(lines)
        assert len(first["gallery"]) == 3
        box = Box(x=100, y=60, w=40, h=20)
        jpeg = encode_thumbnail(np.full((240, 320, 3), 90, dtype=np.uint8), box, ThumbnailConfig())
        assert jpeg is not None
        parcel = item(1, at=datetime.now(UTC)).model_copy(
            update={
                "thumbnail_jpeg": base64.b64encode(jpeg).decode(),
                "output": ParcelOutput(label="reject", score=0.7, track_id=9, box=box, damaged=True),
            }
        )
        live.ingest("gw-a", Channel.RESULTS, batch("gw-a", new_stream(), [parcel]))
        _, second = read_event(lines)
    # Neither the defect count nor the camera's result count moved: a parcel is no part inspected here.
    assert "totals" not in second["parts"]
    assert [g["id"] for g in second["gallery"]] == [str(parcel.id)]
    assert 'alt="damaged parcel"' in second["gallery"][0]["html"]
    assert '<span class="nowrap lane">lane reject</span>' in second["gallery"][0]["html"]
    assert "barcode not read" in second["gallery"][0]["html"]  # this parcel's label was not read


def test_line_stream_is_idle_while_nothing_changes(live: Live) -> None:
    login(live.client, "vera")
    # 6-hour buckets: the bars cannot shift between two ticks a few seconds apart.
    sent = events_of(live.client.get("/console/lines/line-1/events?range=7d&limit=2").text)
    assert [kind for kind, _ in sent] == ["line", ""]


def test_line_stream_says_gone_when_the_session_ends(live: Live) -> None:
    client = live.client
    login(client, "vera")
    with client.stream("GET", "/console/lines/line-1/events?range=7d&limit=50") as stream:
        lines = stream.iter_lines()
        assert read_event(lines)[0] == "line"
        client.post("/logout", headers=ORIGIN)
        kind, data = read_event(lines)
    assert kind == "gone"
    assert data["status"] == 401


def test_line_range_buckets_are_whole(live: Live) -> None:
    login(live.client, "vera")
    sent = events_of(live.client.get("/console/lines/line-1/events?range=24h&limit=1").text)
    counts_chart = sent[0][1]["parts"]["charts"].split("</svg>")[0]  # every bucket has a count bar
    labels = re.findall(r"<title>(\d{4}-\d\d-\d\d \d\d:\d\d):", counts_chart)
    assert len(labels) in (23, 24)  # 23 only when asked exactly on the hour
    assert all(label.endswith(":00") for label in labels)
    assert (
        datetime.fromisoformat(labels[-1])
        <= datetime.now(UTC).replace(tzinfo=None)
        < datetime.fromisoformat(labels[-1]) + timedelta(hours=1)
    )


def test_thumbnail_is_served_through_the_console_with_the_cookie(console: Console) -> None:
    client, seeded = console.client, console.seeded
    assert client.get(f"/console/thumbnails/{seeded.thumbnail_result}").status_code == 401
    login(client, "vera")
    answer = client.get(f"/console/thumbnails/{seeded.thumbnail_result}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/jpeg"
    assert answer.content[:2] == b"\xff\xd8"


def test_anomaly_box_is_placed_relative_to_its_crop() -> None:
    crop = {"x": 100, "y": 50, "w": 200, "h": 100, "frame_w": 640, "frame_h": 480, "tw": 160, "th": 80}
    assert (
        _box_style({"x": 150, "y": 75, "w": 100, "h": 50}, crop)
        == "left:25.0%;top:25.0%;width:50.0%;height:50.0%"
    )
    # A box reaching past the crop is clipped to the picture, and no crop means no box.
    assert (
        _box_style({"x": 250, "y": 50, "w": 400, "h": 10}, crop)
        == "left:75.0%;top:0.0%;width:25.0%;height:10.0%"
    )
    assert _box_style({"x": 1, "y": 1, "w": 1, "h": 1}, None) == ""


def test_gallery_tiles_share_one_picture_box(console: Console) -> None:
    figure = templates().get_template("line_parts.html").module.figure  # type: ignore[attr-defined]
    tile = str(figure({"id": "r1", "has_thumbnail": True, "label": "scratch", "score": 0.9,
                       "box_style": "left:1%", "captured_at": None, "gateway_id": "gw-a"}))  # fmt: skip
    # The picture and its anomaly box sit together inside the fixed-height tile.
    assert re.search(r'<a class="thumb"[^>]*>\s*<span class="pic"><img [^>]+>\s*<span class="box"', tile), (
        tile
    )
    css = console.client.get("/console/static/console.css").text
    assert re.search(r"\.gallery \.thumb \{ height: 120px;", css)
    assert re.search(r"\.gallery \.nothumb \{ height: 120px;", css)


def test_parcel_line_page_counts_parcels_damage_and_lanes(console: Console) -> None:
    seed_parcels(console)
    login(console.client, "vera")
    page = console.client.get("/lines/line-3").text
    assert "4 parcels · 1 damaged · damaged rate 25.0%" in page
    assert "0 defects" not in page
    assert "No defects in this range" not in page
    assert "Parcels by sort lane" in page
    lanes = re.search(r'<table id="lanes">.*?</table>', page, re.S)
    assert lanes is not None, page
    assert re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td></tr>", lanes.group(0)) == [
        ("a", "2"),
        ("b", "1"),
        ("reject", "1"),
    ]
    # The gallery's damaged parcel says what it is, its lane and barcode, not a bare label and score.
    assert "damaged · damage 0.71 (cut-off 0.44)" in page
    assert '<span class="nowrap lane">lane reject</span>' in page
    assert f'barcode <code title="code128">{PARCEL_BARCODE}</code>' in page
    assert "reject · 0.99" not in page
    # The damaged share chart has its top value: one damaged parcel of one in its minute.
    assert "<h3>Damaged parcels (share of parcels)</h3>" in page
    assert '<span class="ymax" title="highest bar">100.0%</span>' in page


def test_gallery_says_a_score_as_a_multiple_of_its_threshold_with_the_raw_numbers_beside(
    console: Console,
) -> None:
    flagged = anomaly_result(1, raw=52.7, threshold=37.66)  # squashed onto the wire as 0.58
    console.ingest("gw-a", Channel.RESULTS, batch("gw-a", new_stream(), [flagged]))
    login(console.client, "vera")
    page = console.client.get("/lines/line-1").text
    figure = re.search(rf'<figure data-id="{flagged.id}">.*?</figure>', page, re.S)
    assert figure is not None, page
    caption = figure.group(0)
    assert "anomaly · " in caption
    assert "1.4× threshold · defect</span>" in caption
    assert 'title="anomaly score 52.7 against the threshold 37.66;' in caption
    assert "0.58" not in caption  # the squashed wire score means nothing to a shift lead
