"""The running demo's control endpoint: the lines it runs, their cameras' looks, and a switch.

``factory-sim demo`` serves it on a free port of 127.0.0.1 and writes where to
``<workdir>/demo-control.json``, so ``factory-sim lines`` (another process) finds it; the console
reaches it through the cloud setting ``demo_control_url``, which the demo gives its API.

    GET  /lines               {"lines": [line, ...], "descriptions": {look: what it shows}}
    GET  /lines/LINE          line = {"line", "look", "looks", "cameras": [{"gateway", "kind",
                              "camera", "look", "from_index"} or {..., "error"}]}
    POST /lines/LINE/look     {"look": NAME} -> {"line", "look", "cameras": [{"gateway",
                              "previous", "from_index"}]}

A line's ``look`` is its cameras' look (``mixed`` when they differ, None when none answers).
Errors are ``{"detail": ...}``: 404 an unknown line, 400 an unknown look or a bad body, 502 a
camera that did not answer. Demo profile only: no authentication, bound to 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from simulators.json_http import call_json, read_json, send_json
from simulators.looks import LOOKS, LookError, check_look

log = logging.getLogger(__name__)

STATE_FILE = "demo-control.json"  # in the demo's workdir: {"url", "pid"}
MIXED = "mixed"


@dataclass(frozen=True)
class LineCamera:
    """One camera of a demo line: the gateway it feeds and where it serves."""

    line: str
    gateway: str
    kind: str
    url: str  # http://127.0.0.1:PORT


class ControlError(Exception):
    """A control request refused or failed: the HTTP status and what to tell the caller."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class LineLooks:
    """The demo's lines and their cameras; reads and switches their looks over the cameras' HTTP."""

    def __init__(self, cameras: list[LineCamera]) -> None:
        self._cameras = list(cameras)
        self._lock = threading.Lock()

    def add(self, cameras: list[LineCamera]) -> None:
        """Cameras started after the control endpoint (the demo starts it before its gateways)."""
        with self._lock:
            self._cameras += cameras

    def names(self) -> list[str]:
        """The lines, in the order their first camera was added."""
        with self._lock:
            return list(dict.fromkeys(camera.line for camera in self._cameras))

    def line(self, name: str) -> dict[str, Any]:
        """One line's look, the looks it offers and each camera's state."""
        cameras = self._of(name)
        states = [self._camera_state(camera) for camera in cameras]
        looks = {state["look"] for state in states if state.get("look")}
        look = None if not looks else looks.pop() if len(looks) == 1 else MIXED
        return {"line": name, "look": look, "looks": list(LOOKS), "cameras": states}

    def set_look(self, name: str, look: str) -> dict[str, Any]:
        """Switch every camera of line ``name`` to ``look`` from its next frame on."""
        cameras = self._of(name)
        try:
            check_look(look)
        except LookError as exc:
            raise ControlError(400, str(exc)) from None
        switched = []
        for camera in cameras:
            status, answer = self._call(camera, "POST", {"look": look})
            if status != 200:
                raise ControlError(status, f"{camera.gateway}'s camera refused: {answer.get('detail')}")
            switched.append(
                {
                    "gateway": camera.gateway,
                    "previous": answer["previous"],
                    "from_index": answer["from_index"],
                }
            )
            log.info("%s (%s): look %s -> %s from frame %d", name, camera.gateway, answer["previous"], look,
                     answer["from_index"])  # fmt: skip
        return {"line": name, "look": look, "cameras": switched}

    def note(self) -> str:
        """``"; looks: line-1 unseen"`` for the lines not in their normal look, else empty."""
        changed = []
        for name in self.names():
            look = self.line(name)["look"]
            if look != "normal":
                changed.append(f"{name} {look or 'unknown (camera not answering)'}")
        return f"; looks: {', '.join(changed)}" if changed else ""

    def _of(self, name: str) -> list[LineCamera]:
        with self._lock:
            cameras = [camera for camera in self._cameras if camera.line == name]
        if not cameras:
            raise ControlError(404, f"no line {name!r} in this demo; lines: {', '.join(self.names())}")
        return cameras

    def _camera_state(self, camera: LineCamera) -> dict[str, Any]:
        state: dict[str, Any] = {"gateway": camera.gateway, "kind": camera.kind, "camera": camera.url}
        try:
            status, answer = self._call(camera, "GET")
        except ControlError as exc:
            return {**state, "error": exc.detail}
        if status != 200:
            return {**state, "error": str(answer.get("detail"))}
        return {**state, "look": answer["look"], "from_index": answer["from_index"]}

    @staticmethod
    def _call(camera: LineCamera, method: str, body: object = None) -> tuple[int, dict[str, Any]]:
        try:
            status, answer = call_json(method, f"{camera.url}/look", body)
        except (OSError, ValueError) as exc:
            raise ControlError(
                502, f"{camera.gateway}'s camera at {camera.url} did not answer: {exc}"
            ) from None
        return status, answer if isinstance(answer, dict) else {"detail": str(answer)}


class _ControlHttpServer(ThreadingHTTPServer):
    daemon_threads = True  # requests are short; stop() closes the socket
    looks: LineLooks


class _ControlHandler(BaseHTTPRequestHandler):
    server: _ControlHttpServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        parts = self._parts()
        looks = self.server.looks
        if parts == ["lines"]:
            send_json(self, 200, {"lines": [looks.line(n) for n in looks.names()], "descriptions": LOOKS})
        elif len(parts) == 2 and parts[0] == "lines":
            self._answer(lambda: looks.line(parts[1]))
        else:
            send_json(self, 404, {"detail": f"unknown path {self.path}; try /lines or /lines/LINE"})

    def do_POST(self) -> None:
        parts = self._parts()
        if len(parts) != 3 or parts[0] != "lines" or parts[2] != "look":
            send_json(self, 404, {"detail": f"unknown path {self.path}; POST /lines/LINE/look"})
            return
        try:
            asked = read_json(self, 1024)
        except ValueError as exc:
            send_json(self, 400, {"detail": str(exc)})
            return
        look = asked.get("look") if isinstance(asked, dict) else None
        if not isinstance(look, str):
            send_json(self, 400, {"detail": f'the body must be {{"look": NAME}}, not {asked!r:.80}'})
            return
        self._answer(lambda: self.server.looks.set_look(parts[1], look))

    def _parts(self) -> list[str]:
        return [unquote(part) for part in self.path.split("?", 1)[0].split("/") if part]

    def _answer(self, work: Callable[[], dict[str, Any]]) -> None:
        try:
            send_json(self, 200, work())
        except ControlError as exc:
            send_json(self, exc.status, {"detail": exc.detail})


class ControlServer:
    """The control endpoint on a free port of 127.0.0.1, and the state file that says where."""

    def __init__(self, looks: LineLooks, workdir: Path) -> None:
        self.looks = looks
        self.state_file = workdir / STATE_FILE
        self._httpd = _ControlHttpServer(("127.0.0.1", 0), _ControlHandler)
        self._httpd.looks = looks
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="demo-control"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps({"url": self.url, "pid": os.getpid()}) + "\n")
        self._thread.start()
        log.info("demo control at %s (written to %s)", self.url, self.state_file)

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for a serve_forever that never ran otherwise
            self._httpd.shutdown()
            self._thread.join(10)
        self._httpd.server_close()
        try:
            ours = json.loads(self.state_file.read_text()).get("pid") == os.getpid()
        except (OSError, ValueError):
            ours = False
        if ours:  # a second demo started in the same workdir since owns the file now
            self.state_file.unlink()
