"""The demo's status line notices stalled storage; its help shows defaults; the supervisor says
when a service was stopped by a signal."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from simulators.cli import build_parser
from simulators.demo_status import StatusLine
from simulators.supervisor import Service, Supervisor, how_it_ended

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


def test_demo_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "how many virtual gateways (default: 3)" in text
    assert "port of the API / console (default: 8000)" in text
    assert "frames per second per camera (default: 2.0)" in text
    assert "(default: var/demo)" in text
    assert "seconds between status lines (default: 15.0)" in text
    assert "(default: run until Ctrl-C)" in text


def test_exit_codes_in_words() -> None:
    assert how_it_ended(-signal.SIGTERM) == "stopped by signal SIGTERM"
    assert how_it_ended(128 + signal.SIGKILL) == "stopped by signal SIGKILL (exit code 137)"
    assert how_it_ended(3) == "exited with code 3"
    assert how_it_ended(0).startswith("exited with code 0 (")


def test_supervisor_says_a_service_was_stopped_by_a_signal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    argv = [sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"]
    supervisor = Supervisor(poll_s=0.05)
    service = supervisor.add(Service("ingest", argv, tmp_path / "ingest.log"))
    supervisor.start()
    try:
        assert service.process is not None
        time.sleep(0.3)
        with caplog.at_level(logging.WARNING, logger="simulators.supervisor"):
            service.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while "restarting" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
        assert "ingest stopped by signal SIGTERM; restarting in 1s" in caplog.text
        assert "exited with code" not in caplog.text
    finally:
        supervisor.stop(timeout_s=5)
