"""Console findings of a new user's trial: parcel lines, readable values, update state, models, alerts."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.alerts.rules import evaluate_all
from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.console.render import alert_value, event_details, slot_state, target_summary
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.service import ingest_messages
from protocol.messages import Box, ModelRef, ParcelOutput, ResultItem, WireModel
from protocol.ota import ReportedState, SlotReport
from protocol.topics import Channel, TopicSpace
from tests.cloud.console_helpers import Seeded, seed_console
from tests.cloud.helpers import SHA, batch, gateway_event, inbound, item, new_stream, state
from tests.cloud.ota_helpers import RecordingPublisher
from tests.cloud.test_console import ORIGIN, create_rollout, login
from tests.cloud.testclient import TestClient


class Console:
    """The console over a seeded database, plus a way to ingest more gateway messages."""

    def __init__(self, client: TestClient, seeded: Seeded, db_url: str, topics: TopicSpace) -> None:
        self.client, self.seeded, self.db_url, self.topics = client, seeded, db_url, topics

    def ingest(self, gateway_id: str, channel: Channel, *messages: WireModel) -> None:
        engine = make_engine(self.db_url)
        try:
            inbounds = [inbound(self.topics, gateway_id, channel, m) for m in messages]
            ingest_messages(make_sessionmaker(engine), inbounds, self.topics)
        finally:
            engine.dispose()


@pytest.fixture
def console(db_url: str, tmp_path: Path, topic_space: TopicSpace) -> Iterator[Console]:
    settings = CloudSettings(db_url=db_url, artifact_dir=str(tmp_path / "artifacts"))
    seeded = seed_console(settings, topic_space, Ed25519PrivateKey.generate(), tmp_path / "release")
    with TestClient(create_app(settings, RecordingPublisher())) as client:
        yield Console(client, seeded, db_url, topic_space)


def _jpeg() -> str:
    ok, data = cv2.imencode(".jpg", np.full((48, 64, 3), 90, dtype=np.uint8))
    assert ok
    return base64.b64encode(data.tobytes()).decode()


def parcel(seq: int, at: datetime, lane: str, damaged: bool) -> ResultItem:
    """A parcel counted on line-3: its label is the sort lane; damaged ones carry a picture."""
    out = ParcelOutput(label=lane, score=0.99, track_id=seq, damaged=damaged, box=Box(x=4, y=4, w=20, h=10))
    extra = {"thumbnail_jpeg": _jpeg()} if damaged else {}
    return item(seq, line="line-3", at=at, model="parcel-det").model_copy(update={"output": out, **extra})


def seed_parcels(console: Console) -> None:
    """line-3: 4 parcels in the last minutes (lanes a, a, b, and one damaged to reject)."""
    now = datetime.now(UTC)
    plan = [("a", False), ("a", False), ("b", False), ("reject", True)]
    items = [parcel(s, now - timedelta(minutes=6 - s), lane, hurt) for s, (lane, hurt) in enumerate(plan, 1)]
    console.ingest("gw-p", Channel.STATE, state("gw-p", True, 1, line="line-3"))
    console.ingest("gw-p", Channel.RESULTS, batch("gw-p", new_stream(), items))


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
    # The gallery's damaged parcel says what it is, not a bare label and detector score.
    assert 'damaged · <span class="nowrap">lane reject</span>' in page
    assert "reject · 0.99" not in page
    # The damaged share chart has its top value: one damaged parcel of one in its minute.
    assert "<h3>Damaged parcels (share of parcels)</h3>" in page
    assert '<span class="ymax" title="highest bar">100.0%</span>' in page


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
    card = page[page.index('data-line="line-3"') :]
    card = card[: card.index("</a>")]
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


def test_rollout_header_names_its_target_in_words(console: Console) -> None:
    login(console.client, "ada")
    rollout = create_rollout(console.client)
    page = console.client.get(f"/rollouts/{rollout}").text
    assert "target gateways gw-a ·" in page
    assert "&#34;gateways&#34;" not in page


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


def test_models_page_shows_one_row_per_model_and_folds_the_cards(console: Console) -> None:
    login(console.client, "vera")
    page = console.client.get("/models").text
    summary = re.search(r'<table id="model-summary">.*?</table>', page, re.S)
    assert summary is not None, page
    assert '<a href="/models/defect-cnn/1.0">1.0</a>' in summary.group(0)
    assert re.search(r'<details class="card model" id="model-defect-cnn" >', page)
    version = console.client.get("/models/defect-cnn/1.0").text
    assert '<details class="card model" id="model-defect-cnn" open>' in version
    assert 'id="model-summary"' not in version


def test_rule_form_errors_are_plain_words_naming_the_field(console: Console) -> None:
    login(console.client, "ada")
    bad = {"line": "", "kind": "defect_rate", "threshold": "abc", "window_s": "0", "min_results": "x"}
    refused = console.client.post("/alerts/rules", data=bad, headers=ORIGIN)
    assert refused.status_code == 422
    page = refused.text
    assert re.search(r'id="error-line" role="alert">Line is required<', page), page
    assert re.search(r'id="error-threshold" role="alert">Threshold must be a number<', page)
    assert re.search(r'id="error-window_s" role="alert">Window must be more than 0<', page)
    assert re.search(r'id="error-min_results" role="alert">Min. results must be a whole number<', page)
    assert "String should" not in page
    assert "Input should" not in page


def test_alert_table_labels_opening_and_current_value_with_unit(console: Console) -> None:
    login(console.client, "ada")
    rule = {"line": "line-1", "kind": "defect_rate", "threshold": "10", "window_s": "3600", "enabled": "on"}
    made = console.client.post("/alerts/rules", data=rule, headers=ORIGIN, follow_redirects=False)
    assert made.status_code == 303, made.text
    engine = make_engine(console.db_url)
    try:
        evaluate_all(make_sessionmaker(engine))
    finally:
        engine.dispose()
    page = console.client.get("/alerts").text
    assert "<th>Alert (as opened)</th>" in page
    assert ">Value now</th>" in page
    assert '<td class="nowrap value-now">50.0%</td>' in page  # 3 defects of 6: in percent, with its unit


def test_favicon_is_served_and_linked(console: Console) -> None:
    answer = console.client.get("/favicon.ico")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("image/svg+xml")
    assert answer.text.startswith("<svg")
    assert '<link rel="icon" href="/favicon.ico"' in console.client.get("/login").text


def test_readable_forms_of_raw_values() -> None:
    assert target_summary({"gateways": ["gw-2"], "line": None, "site": "x", "tags": ["a", "b"]}) == (
        "gateways gw-2 · site x · tags a, b"
    )
    assert target_summary({"gateways": [], "tags": [], "line": "line-1", "site": None}) == "line line-1"
    assert target_summary(None) == "-"
    active, target = {"version": "1.1.0"}, {"version": "1.2.0"}
    assert slot_state({"active": active, "phase": "committed"}) == "running 1.1.0"
    assert slot_state({"active": active, "target": target, "phase": "rolled_back", "error": "p95 high"}) == (
        "running 1.1.0 · update 1.2.0 rolled back: p95 high"
    )
    assert slot_state({"active": active, "target": target, "phase": "health_window"}) == (
        "running 1.1.0 · installing 1.2.0 (health window)"
    )
    assert event_details("outbox_shed", {"first_seq": 1, "last_seq": 40}) == "first seq 1 · last seq 40"
    assert event_details("ota", {}) == "-"
    assert alert_value(412.4, "gateway_offline") == "412 s"
    assert alert_value(38, "outbox_backlog") == "38 items"
    assert alert_value(15.84, "defect_rate") == "15.8%"
