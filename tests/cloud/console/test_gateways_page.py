"""The Gateways list and its live stream (SSE) with real ingested data, for every role."""

from __future__ import annotations

import re

from protocol.topics import Channel
from tests.support.console import ORIGIN, login
from tests.support.console_live import BEFORE, Live, events_of, read_event
from tests.support.messages import state, telemetry


def _row(html: str, gateway_id: str) -> str:
    row = re.search(rf'<tr class="[a-z]+" data-gateway="{gateway_id}">.*?</tr>', html, re.S)
    assert row is not None, html
    return row.group(0)


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
