"""Console findings of a new user's demo: where every model version runs, rule units and lines,
events split from OTA history, plain-word error pages, UTC labels and uniform gallery tiles."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.alerts.rules import evaluate_all
from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.console.render import templates
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.service import ingest_messages
from protocol.messages import EventBatch, ModelRef, WireModel
from protocol.ota import ReportedState, SlotReport
from protocol.topics import Channel, TopicSpace
from tests.cloud.console_helpers import seed_console
from tests.cloud.helpers import SHA, gateway_event, inbound
from tests.cloud.ota_helpers import RecordingPublisher, make_release, register
from tests.cloud.test_console import ORIGIN, login
from tests.cloud.testclient import TestClient

Level = Literal["info", "warning", "error"]


@dataclass
class Console:
    """The console over a seeded database (gw-a on line-1, gw-b on line-2, defect-cnn 1.0)."""

    client: TestClient
    settings: CloudSettings
    topics: TopicSpace
    folder: Path

    def ingest(self, gateway_id: str, channel: Channel, *messages: WireModel) -> None:
        engine = make_engine(self.settings.db_url)
        try:
            found = [inbound(self.topics, gateway_id, channel, m) for m in messages]
            ingest_messages(make_sessionmaker(engine), found, self.topics)
        finally:
            engine.dispose()

    def table(self, path: str, table_id: str) -> str:
        page = self.client.get(path).text
        found = re.search(rf'<table[^>]*id="{table_id}">.*?</table>', page, re.S)
        assert found is not None, f"no table {table_id!r} on {path}"
        return found.group(0)


@pytest.fixture
def console(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Console]:
    settings = CloudSettings(db_url=db_url, artifact_dir=str(tmp_path / "artifacts"))
    seed_console(settings, topic_space, Ed25519PrivateKey.generate(), tmp_path / "release")
    with TestClient(create_app(settings, RecordingPublisher())) as client:
        yield Console(client, settings, topic_space, tmp_path)


def report(gateway_id: str, version: str) -> ReportedState:
    """``gateway_id`` reports defect-cnn ``version`` active in its main slot."""
    active = ModelRef(name="defect-cnn", sha256=SHA, version=version)
    return ReportedState(
        gateway_id=gateway_id,
        desired_revision=1,
        slots={"main": SlotReport(active=active, phase="committed")},
        timestamp=datetime.now(UTC),
    )


def event(kind: str, message: str, at: datetime, level: Level = "info") -> EventBatch:
    return gateway_event(gateway_id="gw-a", timestamp=at, level=level, kind=kind, message=message)


def test_models_page_shows_every_version_that_runs_and_where(console: Console) -> None:
    # 1.3.0 is pushed but not rolled out: gw-a still runs 1.0, which the page must say.
    register(console.settings, make_release(console.folder / "new", "1.3.0", Ed25519PrivateKey.generate()))
    console.ingest("gw-a", Channel.REPORTED, report("gw-a", "1.0"))
    login(console.client, "vera")
    summary = console.table("/models", "model-summary")
    assert '<a href="/models/defect-cnn/1.3.0">1.3.0</a>' in summary  # the latest
    runs = re.search(r'<td class="runs-on">(.*?)</td>', summary, re.S)
    assert runs is not None
    assert re.sub(r"<[^>]+>", "", runs.group(1)) == "1.0 on gw-a"
    assert "no gateway" not in runs.group(1)
    page = console.client.get("/models").text
    assert "latest 1.3.0 · runs on 1 gateway (1.0)" in page
    versions = console.table("/models", "versions-defect-cnn")
    rows = re.findall(r'<tr data-version="([^"]+)">(.*?)</tr>', versions, re.S)
    assert [v for v, _ in rows] == ["1.3.0", "1.0"]  # newest first
    assert "no gateway" in rows[0][1]
    assert '<a class="nowrap" href="/gateways/gw-a">gw-a</a>' in rows[1][1]
    assert "no gateway" not in rows[1][1]
    # The card of the latest version says where the older one runs.
    assert "version 1.0:</span> " in page
    # One model's own page, and a version's page, say the same.
    one = console.client.get("/models/defect-cnn")
    assert one.status_code == 200
    assert "runs on 1 gateway (1.0)" in one.text
    assert '<details class="card model" id="model-defect-cnn" open>' in one.text
    assert "runs on 1 gateway" in console.client.get("/models/defect-cnn/1.0").text
    assert "runs on 0 gateways" in console.client.get("/models/defect-cnn/1.3.0").text


def test_unknown_console_addresses_get_the_console_404_page_in_words(console: Console) -> None:
    login(console.client, "otto")
    for path, said in [
        ("/models/defect-cnnx", "There is no model &#39;defect-cnnx&#39;: it does not exist or was deleted."),
        ("/models/defect-cnn/9.9", "There is no model &#39;defect-cnn&#39; version &#39;9.9&#39;"),
        ("/gateways/gw-nope", "There is no gateway &#39;gw-nope&#39;"),
    ]:
        answer = console.client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert '{"detail"' not in answer.text
        assert "<h1>Not found</h1>" in answer.text, path
        assert said in answer.text, (path, answer.text)
    ack = console.client.post("/alerts/999/ack", headers=ORIGIN)
    assert ack.status_code == 404
    assert "There is no alert 999: it does not exist or was deleted." in ack.text


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


def test_rule_form_names_kinds_and_units_and_questions_a_tiny_percent(console: Console) -> None:
    login(console.client, "ada")
    page = console.client.get("/alerts").text
    form = page[page.index('id="create-rule"') :]
    assert '<option value="gateway_offline" >Gateway offline (seconds)</option>' in form
    assert "Defect rate (%)" in form
    assert "Outbox backlog (items)" in form
    assert ">gateway_offline<" not in form
    assert "Defect rate in percent: 10 means 10%, not 0.1." in form
    assert "Window in seconds (defect rate only)" in form
    rule = {"line": "line-1", "kind": "defect_rate", "threshold": "0.1", "window_s": "600", "enabled": "on"}
    made = console.client.post("/alerts/rules", data=rule, headers=ORIGIN, follow_redirects=False)
    assert made.status_code == 303, made.text
    assert made.headers["location"].startswith("/alerts?saved=")
    after = console.client.get(made.headers["location"]).text
    notice = re.search(r'<p class="form-errors warn" id="rule-notice" role="status">(.*?)</p>', after, re.S)
    assert notice is not None, after
    assert "The threshold is a percent: 0.1 means 0.1% of results, not 10%" in notice.group(1)
    row = re.search(r'<tr data-rule="1">.*?</tr>', after, re.S)
    assert row is not None
    assert "<td>Defect rate</td><td>0.1%<br>" in row.group(0)
    assert "below 1%: a percent, not a fraction" in row.group(0)
    assert "600 s (10 min)" in row.group(0)
    assert "Threshold (%)" in row.group(0)
    # line-1 has 3 defects in 6 results (50%): far above 0.1%, so the alert opened at once.
    engine = make_engine(console.settings.db_url)
    try:
        evaluate_all(make_sessionmaker(engine))
    finally:
        engine.dispose()
    login(console.client, "otto")
    alerts = console.table("/alerts", "alerts")
    assert "<th>Opened <small>UTC</small></th>" in alerts
    assert '<td class="message">Defect rate: ' in alerts
    assert '<td class="action"><form method="post" action="/alerts/' in alerts
    login(console.client, "ada")
    # A threshold meant as a percent raises no question.
    fine = {**rule, "threshold": "10"}
    made = console.client.post("/alerts/rules", data=fine, headers=ORIGIN, follow_redirects=False)
    assert 'id="rule-notice"' not in console.client.get(made.headers["location"]).text
    offline = {"line": "line-2", "kind": "gateway_offline", "threshold": "60", "enabled": "on"}
    assert console.client.post("/alerts/rules", data=offline, headers=ORIGIN).status_code == 200
    listed = console.client.get("/alerts").text
    assert "<td>Gateway offline</td><td>60 seconds</td><td>-</td>" in listed


def test_rule_on_a_line_without_gateways_is_kept_but_flagged(console: Console) -> None:
    login(console.client, "ada")
    rule = {"line": "line-9", "kind": "gateway_offline", "threshold": "60", "enabled": "on"}
    made = console.client.post("/alerts/rules", data=rule, headers=ORIGIN, follow_redirects=False)
    assert made.status_code == 303, made.text
    ok = {**rule, "line": "line-1"}
    assert (
        console.client.post("/alerts/rules", data=ok, headers=ORIGIN, follow_redirects=False).status_code
        == 303
    )
    page = console.client.get("/alerts").text
    rows = dict(re.findall(r'<tr data-rule="\d+"><td>([\w-]+)(.*?)</tr>', page, re.S))
    assert set(rows) == {"line-1", "line-9"}
    assert "no gateway on this line" in rows["line-9"]
    assert "no gateway on this line" not in rows["line-1"]
    datalist = re.search(r'<datalist id="known-lines">(.*?)</datalist>', page, re.S)
    assert datalist is not None
    assert re.findall(r'<option value="([^"]+)">', datalist.group(1)) == ["line-1", "line-2"]


def test_pages_say_unset_values_titles_and_utc_plainly(console: Console) -> None:
    login(console.client, "vera")
    gateway = console.client.get("/gateways/gw-a").text
    assert "<dt>Site · tags</dt><dd>no site · no tags</dd>" in gateway
    assert "- / -" not in gateway
    assert "Captured <small>UTC</small>" in gateway
    assert re.search(r"<dt>Last seen</dt><dd>[\d-]+ [\d:]+ UTC</dd>", gateway)
    line = console.client.get("/lines/line-1").text
    assert "<title>Line: line-1 · factory-edge console</title>" in line
    assert "<h1>Line: line-1 " in line
    assert re.search(r'<span id="updated">[\d-]+ [\d:]+</span> UTC', line)
    assert "Last seen <small>UTC</small>" in console.client.get("/gateways").text
    assert re.search(r'<span id="updated">[\d-]+ [\d:]+</span> UTC', console.client.get("/").text)
    assert "Published <small>UTC</small>" in console.client.get("/models").text


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
