"""What every console page shows: the seeded data for a viewer, unset values, titles and UTC in plain words."""

from __future__ import annotations

import re

from tests.support.console import PAGES, Console, login


def test_every_page_renders_the_seeded_data_for_a_viewer(console: Console) -> None:
    client, seeded = console.client, console.seeded
    login(client, "vera")
    pages = {path: client.get(path) for path in PAGES}
    for path, answer in pages.items():
        assert answer.status_code == 200, (path, answer.text[:500])
    overview = pages["/"].text
    assert 'data-line="line-1"' in overview
    assert 'data-line="line-2"' in overview
    assert "defect-cnn 1.0" in overview  # model in use, from gw-a's birth
    line = pages["/lines/line-1"].text
    assert "<svg" in line
    assert "<td>scratch</td><td>2</td>" in line
    assert "<td>dent</td><td>1</td>" in line
    assert f"/console/thumbnails/{seeded.thumbnail_result}" in line
    assert "gw-a" in pages["/gateways"].text
    assert "offline" in pages["/gateways"].text  # gw-b's death
    assert "Held-out accuracy <strong>0.97</strong>" in pages["/models"].text
    for path in (
        "/lines/line-1?range=24h",
        "/lines/line-1?range=7d",
        "/alerts?show=all",
        "/models/defect-cnn/1.0",
    ):
        assert client.get(path).status_code == 200, path


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
