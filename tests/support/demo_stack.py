"""A running ``factory-sim demo``, as a test's stack: the real demo on the machine's Mosquitto.

It runs exactly what ``make demo`` runs (API + console, ingest, Celery worker with beat, and three
virtual gateways: gw-1 few-shot anomaly model + maintenance notes on line-1, gw-2 supervised CNN
on line-2, gw-3 parcels on line-3, each a camera simulator plus a real ``edge-agent`` process),
with the differences a shared machine needs: the machine's Mosquitto instead of the embedded
broker, a topic root and ingest client id of its own, so parallel runs never see each other's
retained messages or sessions, and a workdir (and, when given, a database) of its own. The URL,
the console logins, the admin token, the signing key and the database are read from the banner
the demo prints, as a new user would read them.

Used by the browser tests (``tests/browser/stack.py``) and the documentation tests (``tests/docs``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.config import CloudSettings
from simulators.demo import DEMO_PASSWORD
from simulators.fleet import FleetConfig
from simulators.net import console_script, free_port
from tests.support.mqtt import clear_session

log = logging.getLogger(__name__)

LINES = FleetConfig.lines  # the demo's three lines: line-1, line-2, line-3
PASSWORD = DEMO_PASSWORD  # what the banner prints; the stack checks the banner says so
ROLES = ("viewer", "operator", "admin")
START_TIMEOUT_S = 120.0  # banner, then every gateway online with results (slow on a busy machine)


@dataclass(frozen=True)
class Banner:
    """What the demo printed for its user."""

    url: str
    users: dict[str, str]
    password: str
    admin_token: str
    signing_key: Path
    db_url: str


@dataclass(frozen=True)
class Demo:
    """A running demo, as its banner describes it.

    ``url``: console and API base URL. ``users``: role -> user name (``viewer``, ``operator``,
    ``admin``), all with ``password``. ``signing_key``: the demo engineer's private key, whose
    public half the gateways trust. ``settings``: where its database, broker and topics are.
    ``workdir``: what ``--workdir`` named (``var/demo`` for ``make demo``).
    """

    url: str
    settings: CloudSettings
    users: dict[str, str]
    password: str
    admin_token: str
    signing_key: Path
    workdir: Path

    @property
    def db_url(self) -> str:
        """The demo's database, as its banner printed it."""
        return self.settings.db_url


def parse_banner(text: str) -> Banner:
    """The console URL, logins, admin token, signing key and database from the demo's banner."""
    found = {
        "url": re.search(r"console / API\s+(\S+)", text),
        "login": re.search(r"console login\s+(.+?) \(password (\S+)\) at (\S+)", text),
        "token": re.search(r"admin token\s+(\S+)", text),
        "key": re.search(r"signing key\s+(\S+)", text),
        "db": re.search(r"^\s+database\s+(\S+)$", text, re.MULTILINE),
    }
    missing = [name for name, match in found.items() if match is None]
    if missing:
        raise AssertionError(f"the demo banner lacks {missing}:\n{text}")
    url, login, token, key, db = (found[k] for k in ("url", "login", "token", "key", "db"))
    if url is None or login is None or token is None or key is None or db is None:  # for mypy
        raise AssertionError("unreachable")
    names = [n.strip() for n in login.group(1).split(",")]
    users = {role: role for role in ROLES if role in names}
    if set(users) != set(ROLES):
        raise AssertionError(f"the demo banner offers logins {names}, not one per role {ROLES}")
    return Banner(url.group(1), users, login.group(2), token.group(1), Path(key.group(1)), db.group(1))


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str, proc: subprocess.Popen[bytes],
          out: Path) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"the demo exited ({proc.returncode}) while waiting for {what}:\n{_tail(out)}"
            )
        try:
            if predicate():
                return
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            pass  # not up yet
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}:\n{_tail(out)}")


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the demo's local API
        return json.load(response)


def _live(url: str, seen: dict[str, Any]) -> bool:
    """Every demo gateway online, every line with results, and a defect picture on a camera line.

    ``seen`` keeps what was last found, for the timeout message.
    """
    gateways = _get(f"{url}/api/v1/gateways")
    lines = {entry["line"]: entry["results"] for entry in _get(f"{url}/api/v1/lines")}
    seen.update(online=sorted(g["id"] for g in gateways if g["online"]), results=lines, pictures=False)
    if len(seen["online"]) < len(LINES) or not all(lines.get(ln) for ln in LINES):
        return False
    for line in LINES[:2]:  # the camera lines; line-3 counts parcels
        if any(d["has_thumbnail"] for d in _get(f"{url}/api/v1/lines/{line}/defects?limit=20")):
            return True
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # Ctrl-C, as a user stops the demo: it stops its services tier by tier.
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        log.error("the demo did not stop within 60 s; killing it (pid %d)", proc.pid)
        proc.kill()
        proc.wait(10)


@contextmanager
def running_demo(db_url: str | None, broker: tuple[str, int], workdir: Path) -> Iterator[Demo]:
    """Run ``factory-sim demo`` until the context ends; yield once its lines are live.

    ``db_url`` None: the demo's own default, SQLite in ``workdir`` (what ``make demo`` uses).
    """
    root = f"test-{uuid.uuid4().hex[:10]}/factory/v1"
    ingest_id = f"test-demo-ingest-{uuid.uuid4().hex[:10]}"
    # The user's FACTORY_* settings are not the test's; the ingest client id must be unique on
    # the shared broker (the default is per host, and a second run would take over its session).
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_")}
    env["FACTORY_INGEST_CLIENT_ID"] = ingest_id
    broker_url = f"mqtt://{broker[0]}:{broker[1]}"
    argv = [
        console_script("factory-sim"), "demo", "--broker", broker_url,
        "--api-port", str(free_port()), "--workdir", str(workdir), "--topic-root", root,
        "--status-every", "600",
    ]  # fmt: skip
    if db_url is not None:
        argv += ["--db", db_url]
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "demo.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env)  # noqa: S603
    try:
        _wait(lambda: "Ctrl-C stops everything." in out.read_text(), START_TIMEOUT_S, "the banner", proc, out)
        banner = parse_banner(out.read_text())
        assert banner.password == PASSWORD, f"the banner prints password {banner.password!r}"
        seen: dict[str, Any] = {}
        try:
            _wait(lambda: _live(banner.url, seen), START_TIMEOUT_S, "live lines", proc, out)
        except AssertionError as exc:
            raise AssertionError(f"the demo's lines never all went live (last seen: {seen}); {exc}") from None
        settings = CloudSettings(
            db_url=banner.db_url,
            broker_url=broker_url,
            topic_root=root,
            artifact_dir=str(workdir / "artifacts"),
            public_url=banner.url,
        )
        yield Demo(
            banner.url,
            settings,
            banner.users,
            banner.password,
            banner.admin_token,
            banner.signing_key,
            workdir,
        )
    finally:
        _stop(proc)
        clear_session(broker, ingest_id)
