"""The console's own files: stylesheet and scripts, the favicon, and nothing else."""

from __future__ import annotations

from tests.support.console import Console


def test_static_assets_are_served_and_nothing_else(console: Console) -> None:
    client = console.client
    assert client.get("/console/static/console.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/console/static/console.css").status_code == 200
    assert client.get("/console/static/..%2Frender.py").status_code == 404


def test_favicon_is_served_and_linked(console: Console) -> None:
    answer = console.client.get("/favicon.ico")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("image/svg+xml")
    assert answer.text.startswith("<svg")
    assert '<link rel="icon" href="/favicon.ico"' in console.client.get("/login").text
