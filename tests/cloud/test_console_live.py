"""The console's live Line and Rollout pages: their SSE streams with real ingested data, and roles."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from edge_agent.thumbnails import ThumbnailConfig, encode_thumbnail
from protocol.messages import Box, DefectOutput, ParcelOutput
from protocol.ota import SlotHealth
from protocol.topics import Channel, TopicSpace
from tests.cloud.console_live_helpers import (
    BEFORE,
    ORIGIN,
    Live,
    events_of,
    login,
    read_event,
    running_live,
)
from tests.cloud.helpers import batch, item, new_stream


@pytest.fixture
def live(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Live]:
    with running_live(db_url, tmp_path, topic_space) as running:
        yield running


# --- Line page -----------------------------------------------------------------------------


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
        jpeg = encode_thumbnail(frame, box, ThumbnailConfig())  # as the agent does, crop geometry inside
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
    assert "7 results · 3 defects" in second["parts"]["totals"]  # the defect count did not move
    assert [g["id"] for g in second["gallery"]] == [str(parcel.id)]
    assert 'alt="damaged parcel"' in second["gallery"][0]["html"]
    assert 'damaged · <span class="nowrap">lane reject</span>' in second["gallery"][0]["html"]


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


# --- Rollout page ------------------------------------------------------------------------------


def test_rollout_page_shows_measured_gates(live: Live) -> None:
    live.report("gw-a", "1.0", 0, BEFORE, "committed")
    rollout = live.create(thresholds={"max_error_rate": 0.05, "max_p95_latency_ms": 200})
    live.tick()
    bad = SlotHealth(inferences=80, errors=8, p95_latency_ms=150.0, defect_rate=0.1, mean_confidence=0.9)
    live.report("gw-a", "1.1", live.publisher.published[-1].revision, bad, "health_window")
    login(live.client, "vera")
    page = live.client.get(f"/rollouts/{rollout}").text
    row = re.search(r'<tr data-gateway="gw-a">.*?</tr>', page, re.S)
    assert row is not None
    assert re.search(r'data-gate="max_error_rate"[^>]*>10\.0% / max 5\.0%<', row.group(0))
    assert 'class="gate bad" data-gate="max_error_rate"' in row.group(0)
    assert re.search(
        r'class="gate ok" data-gate="max_p95_latency_ms"[^>]*>150 ms / max 200 ms<', row.group(0)
    )
    assert "status-unhealthy" in row.group(0)
    assert f'data-live="/console/rollouts/{rollout}/events"' in page
    assert 'id="pause"' not in page  # a viewer is offered no action


def test_rollout_stream_follows_a_pause_and_ends_on_abort(live: Live) -> None:
    rollout = live.create()
    client = live.client
    login(client, "vera")
    with client.stream("GET", f"/console/rollouts/{rollout}/events?limit=50") as stream:
        lines = stream.iter_lines()
        kind, first = read_event(lines)
        assert (kind, first["state"], first["ended"]) == ("rollout", "running", False)
        assert set(first["parts"]) == {"summary", "waves", "gates", "gateways", "events"}
        client.post(
            f"/api/v1/rollouts/{rollout}/pause", json={"reason": "shift check"}, headers=live.token("otto")
        )
        kind, paused = read_event(lines)
        assert paused["state"] == "paused"
        # The log and the bake figure changed: the other fragments are not sent again.
        assert set(paused["parts"]) == {"events", "gates"}
        assert "paused by" in paused["parts"]["events"]
        assert "paused · restarts from 0 s on resume" in paused["parts"]["gates"]
        client.post(
            f"/api/v1/rollouts/{rollout}/abort", json={"reason": "bad batch"}, headers=live.token("otto")
        )
        kind, aborted = read_event(lines)
        assert (aborted["state"], aborted["ended"]) == ("aborted", True)
        assert "bad batch" in aborted["parts"]["summary"]
        assert [line for line in lines if line] == []  # an ended rollout ends its stream


def test_rollout_stream_of_an_unknown_rollout_fails_cleanly(live: Live) -> None:
    login(live.client, "vera")
    sent = events_of(live.client.get("/console/rollouts/nope/events?limit=3").text)
    assert sent == [("failed", {"status": 404, "detail": "rollout 'nope' not found"})]


def test_operator_pauses_and_resumes_through_the_console(live: Live) -> None:
    rollout = live.create()
    login(live.client, "otto")
    page = live.client.get(f"/rollouts/{rollout}").text
    assert re.search(r'data-when="paused" hidden><button type="submit" id="resume"', page)
    paused = live.client.post(f"/rollouts/{rollout}/pause", data={"reason": "check"}, headers=ORIGIN)
    assert 'id="state">paused<' in paused.text
    assert re.search(
        r'data-when="running" hidden><input name="reason" placeholder="reason"><button type="submit" id="pause"',
        paused.text,
    )
    resumed = live.client.post(f"/rollouts/{rollout}/resume", headers=ORIGIN)
    assert 'id="state">running<' in resumed.text
