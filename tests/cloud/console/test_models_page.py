"""The Models pages: every model, one model, one version; where each version runs, and the cards."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.messages import ModelRef
from protocol.ota import ReportedState, SlotReport
from protocol.topics import Channel
from tests.support.console import Console, login
from tests.support.console_live import Live
from tests.support.messages import SHA
from tests.support.releases import make_release, register
from tests.support.shadow_evidence import send_windows, shadowing


def test_model_card_html_is_shown_as_text_not_run(console: Console) -> None:
    client = console.client
    login(client, "vera")
    page = client.get("/models").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page


def report(gateway_id: str, version: str) -> ReportedState:
    """``gateway_id`` reports defect-cnn ``version`` active in its main slot."""
    active = ModelRef(name="defect-cnn", sha256=SHA, version=version)
    return ReportedState(
        gateway_id=gateway_id,
        desired_revision=1,
        slots={"main": SlotReport(active=active, phase="committed")},
        timestamp=datetime.now(UTC),
    )


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


def test_a_version_page_shows_its_shadow_runs_and_gated_rollouts(live: Live) -> None:
    champion, challenger = shadowing(live)
    cells = {("good", "good"): 93, ("defect", "defect"): 5, ("good", "defect"): 2}
    send_windows(live, champion, challenger, 6, cells, capture="cap-0000000000ab1")
    rollout = live.create(gates={"min_frames": 500})
    login(live.client, "vera")
    page = live.client.get("/models/defect-cnn/1.1").text
    found = re.search(r'<table[^>]*id="shadow-defect-cnn">.*?</table>', page, re.S)
    assert found is not None, "no shadow table on the version page"
    row = re.sub(
        r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(0).split('data-gateway="gw-a">')[1])
    ).strip()
    assert (
        row
        == "gw-a line-1 · main defect-cnn 1.0 shadowing 600 (12) 98.0% 5.0% → 7.0% 20.0 → 30.0 cap-0000000000ab1"
    )
    assert f'<a href="/rollouts/{rollout}">{rollout}</a> running' in page
    assert "gated on its shadow run" in page
    assert "Never shadowed" in live.client.get("/models/defect-cnn/1.0").text
