"""The Line page's CSV exports: links for the page's range, the file streamed through the console as
the logged-in user, and refusals."""

from __future__ import annotations

import csv
import io
import re

from tests.support.console import Console, login


def test_the_line_page_links_its_range_as_csv(console: Console) -> None:
    login(console.client, "vera")
    page = console.client.get("/lines/line-1?range=6h").text
    button = re.search(r'<a class="button" id="export-csv" href="([^"]+)" download>Export CSV</a>', page)
    assert button is not None, page
    assert button.group(1) == "/console/lines/line-1/export/results.csv?range=6h"
    for kind in ("dispositions", "alerts", "notes"):
        assert f'href="/console/lines/line-1/export/{kind}.csv?range=6h" download' in page


def test_the_export_streams_the_lines_results_of_the_range(console: Console) -> None:
    client = console.client
    assert client.get("/console/lines/line-1/export/results.csv").status_code == 401
    login(client, "vera")
    answer = client.get("/console/lines/line-1/export/results.csv?range=1h")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="results-line-1-\d{8}T\d{6}Z-\d{8}T\d{6}Z\.csv"',
                        answer.headers["content-disposition"])  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(answer.text, newline="")))
    # The six results seeded on line-1 in the last ten minutes; none of line-2's.
    assert sorted(r["frame"] for r in rows) == [f"frame-{s}" for s in range(1, 7)]
    assert {r["line"] for r in rows} == {"line-1"}
    assert [r["captured_at"] for r in rows] == sorted(r["captured_at"] for r in rows)
    api = client.get("/api/v1/results", params={"line": "line-1"}).json()["items"]
    assert {r["id"] for r in rows} == {r["id"] for r in api}


def test_an_export_the_api_refuses_is_the_error_page(console: Console) -> None:
    login(console.client, "vera")
    answer = console.client.get("/console/lines/line-1/export/pictures.csv")
    assert answer.status_code == 422
    assert "cannot be exported; choose one of results, notes, dispositions, alerts" in answer.text
    assert answer.headers["content-type"].startswith("text/html")
