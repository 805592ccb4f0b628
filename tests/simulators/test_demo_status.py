"""The demo's status line: it polls the API and notices when stored results stop growing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from simulators.demo_status import StatusLine

LOG = Path("var/demo/logs/ingest.log")


def test_status_line_says_when_stored_results_stop_growing() -> None:
    status = StatusLine(LOG)
    assert status.text(3, 3, {"line-1": 10}, now=100.0) == (
        "3/3 gateways online; results stored per line: line-1: 10"
    )
    assert "no new results" not in status.text(3, 3, {"line-1": 10}, now=129.0)
    stalled = status.text(3, 3, {"line-1": 10}, now=145.0)
    assert stalled == (
        "3/3 gateways online; results stored per line: line-1: 10; "
        "no new results stored for 45 s: is ingest running? see var/demo/logs/ingest.log"
    )
    # Growth clears it; so does having no gateway online (nothing is expected then).
    assert "no new results" not in status.text(3, 3, {"line-1": 11}, now=146.0)
    assert "no new results" not in status.text(0, 3, {"line-1": 11}, now=200.0)
    assert "no new results" not in status.text(2, 3, {"line-1": 11}, now=220.0)
    assert "no new results stored for 31 s" in status.text(2, 3, {"line-1": 11}, now=231.0)


class _Api(BaseHTTPRequestHandler):
    answers: dict[str, Any] = {}

    def do_GET(self) -> None:
        body = json.dumps(self.answers[self.path]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[tuple[str, dict[str, Any]]]:
    answers: dict[str, Any] = {}
    handler = type("Api", (_Api,), {"answers": answers})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answers
    finally:
        server.shutdown()
        server.server_close()


def test_status_line_polls_the_api_over_http(api: tuple[str, dict[str, Any]]) -> None:
    url, answers = api
    answers["/api/v1/gateways"] = [{"id": "gw-1", "online": True}, {"id": "gw-2", "online": False}]
    answers["/api/v1/lines"] = [{"line": "line-1", "results": 5}, {"line": "line-2", "results": 0}]
    status = StatusLine(LOG, stall_s=30)
    assert status.poll(url, now=0.0) == "1/2 gateways online; results stored per line: line-1: 5, line-2: 0"
    assert status.poll(url, now=40.0).endswith(
        "no new results stored for 40 s: is ingest running? see " + str(LOG)
    )
    assert status.poll("http://127.0.0.1:9", now=41.0).startswith("API not answering")
