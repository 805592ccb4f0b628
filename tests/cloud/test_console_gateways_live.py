"""The console's live Gateways list and gateway page: their SSE streams with real ingested data, and roles."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest

from protocol.messages import EventBatch
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
from tests.cloud.helpers import gateway_event, state, telemetry


@pytest.fixture
def live(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Live]:
    with running_live(db_url, tmp_path, topic_space) as running:
        yield running


def _row(html: str, gateway_id: str) -> str:
    row = re.search(rf'<tr class="[a-z]+" data-gateway="{gateway_id}">.*?</tr>', html, re.S)
    assert row is not None, html
    return row.group(0)


def _event(kind: str, message: str, level: Literal["info", "warning", "error"] = "warning") -> EventBatch:
    return gateway_event(
        gateway_id="gw-a", timestamp=datetime.now(UTC), level=level, kind=kind, message=message,
        details={"slot": "main"} if kind == "ota" else {},
    )  # fmt: skip


# --- Gateways list -----------------------------------------------------------------------------


def test_gateways_page_is_wired_to_its_stream_for_every_role(live: Live) -> None:
    assert live.client.get("/gateways", follow_redirects=False).headers["location"] == "/login?next=/gateways"
    for user in ("vera", "otto", "ada"):
        login(live.client, user)
        page = live.client.get("/gateways").text
        assert 'data-live="/console/gateways/events"' in page
        assert '<script src="/console/static/live.js"' in page
        assert 'class="badge ok">online<' in _row(page, "gw-a")
        assert 'class="badge bad">offline<' in _row(page, "gw-b")
        assert "2 gateways · 1 online · 1 offline" in page
    script = live.client.get("/console/static/live.js").text
    assert 'addEventListener("gateways"' in script
    assert 'addEventListener("gateway"' in script


def test_gateways_stream_sends_the_rows_that_changed(live: Live) -> None:
    client = live.client
    assert client.get("/console/gateways/events?limit=1").status_code == 401
    login(client, "vera")
    with client.stream("GET", "/console/gateways/events?limit=50") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        kind, first = read_event(lines)
        assert kind == "gateways"
        assert first["rows"] == {}
        assert "2 gateways · 1 online · 1 offline" in first["parts"]["summary"]
        assert 'class="badge ok">online<' in _row(first["parts"]["gateways"], "gw-a")

        # gw-a dies: its row alone goes out (the row's class too), with the new counts.
        live.ingest("gw-a", Channel.STATE, state("gw-a", False, 1))
        _, died = read_event(lines)
        assert set(died["rows"]) == {"gw-a"}
        assert "gateways" not in died["parts"]
        assert died["rows"]["gw-a"].startswith('<tr class="offline" data-gateway="gw-a">')
        assert 'class="badge bad">offline<' in died["rows"]["gw-a"]
        assert "2 gateways · 0 online · 2 offline" in died["parts"]["summary"]

        # New telemetry: outbox, CPU and memory of that row change; the counts do not.
        sample = telemetry("gw-a").model_copy(
            update={"outbox_depth": 37, "cpu_percent": 55.0, "memory_bytes": 250_000_000}
        )
        live.ingest("gw-a", Channel.TELEMETRY, sample)
        _, measured = read_event(lines)
        assert set(measured["rows"]) == {"gw-a"}
        assert "summary" not in measured["parts"]
        row = measured["rows"]["gw-a"]
        assert '<td data-k="outbox">37</td>' in row
        assert '<td data-k="cpu">55%</td>' in row
        assert '<td data-k="memory">250 MB</td>' in row

        # What a slot runs and how its last update went, from the reported state.
        live.report("gw-b", "1.0", 0, BEFORE, "committed")
        _, reported = read_event(lines)
        assert set(reported["rows"]) == {"gw-b"}
        assert '<td class="slot-state">main: running 1.0</td>' in reported["rows"]["gw-b"]

        # A gateway never seen before: the whole table, in id order.
        live.ingest("gw-0", Channel.STATE, state("gw-0", True, 1, line="line-3"))
        _, joined = read_event(lines)
        table = joined["parts"]["gateways"]
        assert table.index('data-gateway="gw-0"') < table.index('data-gateway="gw-a"')
        assert joined["rows"] == {}
        assert "3 gateways · 1 online · 2 offline" in joined["parts"]["summary"]

        client.post("/logout", headers=ORIGIN)
        kind, gone = read_event(lines)
    assert (kind, gone["status"]) == ("gone", 401)


def test_gateways_stream_is_idle_while_nothing_changes(live: Live) -> None:
    login(live.client, "vera")
    sent = events_of(live.client.get("/console/gateways/events?limit=2").text)
    assert [kind for kind, _ in sent] == ["gateways", ""]


# --- Gateway page ------------------------------------------------------------------------------


def test_gateway_page_is_wired_to_its_stream(live: Live) -> None:
    login(live.client, "vera")
    page = live.client.get("/gateways/gw-a").text
    assert 'data-live="/console/gateways/gw-a/events"' in page
    assert '<script src="/console/static/live.js"' in page
    for part in ("status", "state", "machine", "ota", "events", "history", "results"):
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
        assert set(first["parts"]) == {"status", "state", "machine", "ota", "events", "history", "results"}
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
