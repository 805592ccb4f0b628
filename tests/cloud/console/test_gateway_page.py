"""One gateway's page: its events apart from its OTA history, its update state, and its live stream."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.service import ingest_messages
from protocol.messages import EventBatch, ModelRef
from protocol.ota import ReportedState, SlotReport
from protocol.topics import Channel, TopicSpace
from tests.support.console import ORIGIN, Console, anomaly_result, login, seed_notes
from tests.support.console_live import BEFORE, Live, events_of, read_event
from tests.support.messages import SHA, batch, gateway_event, inbound, new_stream, state, telemetry


def test_gateway_page_lists_the_gateways_events(
    console: Console, db_url: str, topic_space: TopicSpace
) -> None:
    client = console.client
    login(client, "vera")
    assert "No events reported yet." in client.get("/gateways/gw-a").text
    shed = gateway_event(
        gateway_id="gw-a", timestamp=datetime.now(UTC), level="warning", kind="outbox_shed",
        message="outbox full: shed seq 1-40", details={"first_seq": 1, "last_seq": 40},
    )  # fmt: skip
    engine = make_engine(db_url)
    try:
        ingest_messages(
            make_sessionmaker(engine), [inbound(topic_space, "gw-a", Channel.EVENTS, shed)], topic_space
        )
    finally:
        engine.dispose()
    page = client.get("/gateways/gw-a").text
    row = re.search(r'<table id="events">.*?</table>', page, re.S)
    assert row is not None, page
    assert "outbox_shed" in row.group(0)
    assert "outbox full: shed seq 1-40" in row.group(0)
    assert '<span class="badge bad">warning</span>' in row.group(0)
    assert "No events reported yet." not in page


def test_gateway_page_shows_a_notes_words_and_urgency_where_a_score_would_stand(console: Console) -> None:
    seed_notes(console.ingest)
    login(console.client, "vera")
    page = console.client.get("/gateways/gw-a").text
    row = re.search(r"<tr>(?:(?!</tr>).)*Sparks at drive 4(?:(?!</tr>).)*</tr>", page, re.S)
    assert row is not None, page
    assert '<span class="badge urgency urgency-high">high urgency</span>' in row.group(0)
    assert '<td class="note-text">Sparks at drive 4 - isolate now</td>' in row.group(0)
    assert "0.80" not in row.group(0)  # the category's confidence is not shown as if it meant something


def test_gateway_results_say_what_each_score_means_beside_its_threshold(console: Console) -> None:
    calm, hot = anomaly_result(1, raw=18.8, threshold=37.66), anomaly_result(2, raw=38.0, threshold=37.66)
    console.ingest("gw-a", Channel.RESULTS, batch("gw-a", new_stream(), [calm, hot]))
    login(console.client, "vera")
    page = console.client.get("/gateways/gw-a").text
    rows = re.findall(r"<tr>(?:(?!</tr>).)*defect-patchcore(?:(?!</tr>).)*</tr>", page, re.S)
    assert len(rows) == 2, page
    hot_row, calm_row = rows  # newest first
    # Just over the threshold reads as such, not as a rounded "1.0" that could be either side.
    assert "1.01× threshold · defect" in hot_row
    assert "0.5× threshold · good" in calm_row
    assert 'title="anomaly score 18.8 against the threshold 37.66;' in calm_row
    assert "<th>Score meaning / note</th>" in page


Level = Literal["info", "warning", "error"]


def event(kind: str, message: str, at: datetime, level: Level = "info") -> EventBatch:
    return gateway_event(gateway_id="gw-a", timestamp=at, level=level, kind=kind, message=message)


def test_gateway_page_lists_ota_steps_only_under_ota_history(console: Console) -> None:
    now = datetime.now(UTC)
    # The other event is older than a burst of 60 OTA steps: it must still be listed.
    shed = event("outbox_shed", "outbox full: shed seq 1-40", now - timedelta(minutes=30), "warning")
    steps = [event("ota", f"ota step {i}", now - timedelta(seconds=i)) for i in range(60)]
    console.ingest("gw-a", Channel.EVENTS, shed, *steps)
    login(console.client, "vera")
    events = console.table("/gateways/gw-a", "events")
    history = console.table("/gateways/gw-a", "ota-history")
    assert "outbox full: shed seq 1-40" in events
    assert "ota step" not in events
    assert "ota step 0<" in history
    assert "outbox_shed" not in history
    assert "When <small>UTC</small>" in events


def test_gateway_shows_a_refused_update_beside_the_version_it_still_runs(console: Console) -> None:
    ref = {"name": "defect-cnn", "sha256": SHA}
    report = ReportedState(
        gateway_id="gw-a",
        desired_revision=3,
        slots={
            "main": SlotReport(
                active=ModelRef(**ref, version="1.1.0"),
                phase="failed",
                target=ModelRef(**ref, version="1.2.0"),
                error="signature: key 2b1d889d is not trusted",
            )
        },
        timestamp=datetime.now(UTC),
    )
    event = gateway_event(
        gateway_id="gw-a", timestamp=datetime.now(UTC), level="error", kind="ota",
        message="defect-cnn 1.2.0 refused", details={"slot": "main", "phase": "failed", "revision": 3,
                                                     "target_version": "1.2.0", "active_version": "1.1.0"},
    )  # fmt: skip
    console.ingest("gw-a", Channel.REPORTED, report)
    console.ingest("gw-a", Channel.EVENTS, event)
    login(console.client, "vera")
    said = "main: running 1.1.0 · last update 1.2.0 refused: signature: key 2b1d889d is not trusted"
    page = console.client.get("/gateways/gw-a").text
    assert said in page
    assert "(failed)" not in page
    history = re.search(r'<table id="ota-history">.*?</table>', page, re.S)
    assert history is not None, page
    assert "slot main · phase failed · revision 3 · target 1.2.0 · active 1.1.0" in history.group(0)
    assert "&#34;slot&#34;" not in history.group(0)
    listing = console.client.get("/gateways").text
    assert f'<td class="slot-state">{said}</td>' in listing


def _event(kind: str, message: str, level: Literal["info", "warning", "error"] = "warning") -> EventBatch:
    return gateway_event(
        gateway_id="gw-a", timestamp=datetime.now(UTC), level=level, kind=kind, message=message,
        details={"slot": "main"} if kind == "ota" else {},
    )  # fmt: skip


def test_gateway_page_is_wired_to_its_stream(live: Live) -> None:
    login(live.client, "vera")
    page = live.client.get("/gateways/gw-a").text
    assert 'data-live="/console/gateways/gw-a/events"' in page
    assert '<script src="/console/static/live.js"' in page
    for part in ("status", "state", "drift", "machine", "ota", "events", "history", "results"):
        assert f'data-part="{part}"' in page, part
    assert "No events reported yet." in page


def test_gateway_stream_follows_events_telemetry_state_and_ota(live: Live) -> None:
    client = live.client
    assert client.get("/console/gateways/gw-a/events?limit=1").status_code == 401
    login(client, "otto")
    with client.stream("GET", "/console/gateways/gw-a/events?limit=50") as stream:
        lines = stream.iter_lines()
        kind, first = read_event(lines)
        assert (kind, first["online"]) == ("gateway", True)
        assert set(first["parts"]) == {
            "status",
            "state",
            "drift",
            "machine",
            "ota",
            "events",
            "history",
            "results",
        }
        assert "No events reported yet." in first["parts"]["events"]

        live.ingest("gw-a", Channel.EVENTS, _event("outbox_shed", "outbox full: shed seq 1-40"))
        _, shed = read_event(lines)
        assert "outbox full: shed seq 1-40" in shed["parts"]["events"]
        assert '<span class="badge bad">warning</span>' in shed["parts"]["events"]
        assert not {"results", "history", "ota", "status"} & set(shed["parts"])  # unchanged: not resent

        sample = telemetry("gw-a").model_copy(update={"outbox_depth": 412, "cpu_percent": 81.0})
        live.ingest("gw-a", Channel.TELEMETRY, sample)
        _, measured = read_event(lines)
        assert "CPU 81% · 0 MB · outbox 412 (0 B)" in measured["parts"]["state"]
        assert "status" not in measured["parts"]

        live.ingest("gw-a", Channel.STATE, state("gw-a", False, 1))
        _, died = read_event(lines)
        assert died["online"] is False
        assert 'class="badge bad">offline<' in died["parts"]["status"]

        live.report("gw-a", "1.0", 0, BEFORE, "committed")
        live.ingest("gw-a", Channel.EVENTS, _event("ota", "defect-cnn 1.0 committed", level="info"))
        _, ota = read_event(lines)
        assert 'data-slot="main">main: running 1.0<' in ota["parts"]["ota"]
        assert "defect-cnn 1.0 committed" in ota["parts"]["history"]
        assert "events" not in ota["parts"]  # OTA steps are listed under OTA history only

        client.post("/logout", headers=ORIGIN)
        kind, gone = read_event(lines)
    assert (kind, gone["status"]) == ("gone", 401)


def test_gateway_stream_is_idle_while_nothing_changes(live: Live) -> None:
    login(live.client, "ada")
    sent = events_of(live.client.get("/console/gateways/gw-b/events?limit=2").text)
    assert [kind for kind, _ in sent] == ["gateway", ""]
    assert sent[0][1]["online"] is False


def test_gateway_stream_of_an_unknown_gateway_fails_cleanly(live: Live) -> None:
    login(live.client, "vera")
    sent = events_of(live.client.get("/console/gateways/nope/events?limit=3").text)
    assert sent == [("failed", {"status": 404, "detail": "gateway 'nope' not found"})]


def _outside_media(css: str) -> str:
    return re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", css)


def test_gateway_page_folds_old_ota_steps_and_says_when_all_events_are_ota(console: Console) -> None:
    now = datetime.now(UTC)
    steps = [event("ota", f"ota step {i}", now - timedelta(seconds=i)) for i in range(25)]
    console.ingest("gw-a", Channel.EVENTS, *steps)
    login(console.client, "vera")
    page = console.client.get("/gateways/gw-a").text
    shown = console.table("/gateways/gw-a", "ota-history")
    older = console.table("/gateways/gw-a", "ota-history-older")
    assert shown.count("<tr>") == 21  # the header and the newest 20
    assert "ota step 0<" in shown
    assert "ota step 19<" in shown
    assert "ota step 20<" not in shown
    assert older.count("<tr>") == 6
    assert "ota step 24<" in older
    assert "<summary>Show all 25 OTA steps (5 older)</summary>" in page
    assert "No events other than OTA steps (see OTA history)." in page
    assert "No events reported yet." not in page
    # Another gateway that reported nothing still says so.
    assert "No events reported yet." in console.client.get("/gateways/gw-b").text
    # The Gateways list's update-state column keeps a width on every screen, not only phones.
    css = console.client.get("/console/static/console.css").text
    assert re.search(r"td\.slot-state \{ min-width: \d+rem; \}", _outside_media(css))
