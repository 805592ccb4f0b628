"""Running a document's commands as its reader would: in order, each in bash, from a folder that
looks like the repository root, against a running ``factory-sim demo``.

The folder (:class:`Sandbox`) links every top-level entry of the repository (``.venv``,
``domain_models``, ...) but has a ``var/`` of its own whose ``var/demo`` is the running demo's
workdir, so ``var/demo/keys/demo-signing.pem`` and ``sqlite:///$PWD/var/demo/cloud.db`` are the
demo's, as after ``make demo``, and nothing a command writes lands in the repository.

What the reader would type in is filled in, and nothing else is changed:

- ``<placeholders>`` (``<admin token printed by make demo>``, ``<id printed above>``) from
  :attr:`Sandbox.placeholders`; an unknown one fails, naming it;
- ``...`` (a password the reader picks) by one password;
- a port on 127.0.0.1 by the port that service really listens on: the demo's API is "on 8000";
  a service a document starts with ``--port 8000`` (or ``--metrics-port``) gets a free port, and
  later commands reaching ``127.0.0.1:8000`` reach it.

The environment is the test's, without ``FACTORY_*`` settings, with a ``HOME`` of the sandbox's
own (so ``factoryctl login`` does not touch the user's) and without our console scripts on
``PATH`` (commands spell ``.venv/bin/NAME``, as the README says). A topic root and an ingest
client id of its own keep services a document starts apart from everything else on the shared
Mosquitto. Long-running services (``factory-cloud api|ingest|worker``) are started in the
background, waited for until they are ready, and stopped with Ctrl-C (SIGINT) at the end.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from simulators.net import free_port
from tests.support.cli_parse import console_scripts
from tests.support.demo_stack import Demo
from tests.support.doc_blocks import PLACEHOLDER, ROOT, DocCommand
from tests.support.mqtt import clear_session

COMMAND_TIMEOUT_S = 600.0  # a hang guard, not a speed check (a training step takes a minute or two)
SERVICE_START_TIMEOUT_S = 120.0
SERVICE_STOP_TIMEOUT_S = 60.0
PORT_FLAGS = ("--port", "--metrics-port", "--api-port")
LOCAL_PORT = re.compile(r"\b(127\.0\.0\.1|localhost):(\d+)")


@dataclass(frozen=True)
class Ran:
    """One command as run: what bash was given, its exit status and output."""

    command: DocCommand
    script: str
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"{self.command.where}: `{self.command.text}`\nran: {self.script}\n"
            f"exit status {self.returncode}\nstdout:\n{self.stdout[-3000:]}\nstderr:\n{self.stderr[-3000:]}"
        )


@dataclass
class Service:
    """A long-running command of a document, started in the background."""

    command: DocCommand
    script: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - a local service of the test
            return True
    except (urllib.error.URLError, OSError):
        return False


# When a long-running service is ready: (program, subcommand) -> predicate on (service, its port).
READY: dict[tuple[str, str], Callable[[Service, int | None], bool]] = {
    ("factory-cloud", "api"): lambda svc, port: _http_ok(f"http://127.0.0.1:{port or 8000}/healthz"),
    ("factory-cloud", "ingest"): lambda svc, port: "ingest connected" in svc.output(),
    ("factory-cloud", "worker"): lambda svc, port: re.search(r"celery@\S+ ready", svc.output()) is not None,
}
# Commands that run until stopped, whether or not this module knows when they are ready.
LONG_RUNNING = {
    ("factory-cloud", "api"),
    ("factory-cloud", "ingest"),
    ("factory-cloud", "worker"),
    ("factory-cloud", "broker"),
    ("factory-sim", "demo"),
    ("factory-sim", "gateways"),
    ("edge-agent", ""),
}


def service_kind(words: list[str]) -> tuple[str, str] | None:
    """(program, subcommand) when ``words`` start a long-running service, else None."""
    argv = [w for w in words if not ("=" in w and w.split("=", 1)[0].isidentifier())]
    if not argv:
        return None
    program = Path(argv[0]).name
    sub = next((w for w in argv[1:] if not w.startswith("-")), "") if program != "edge-agent" else ""
    kind = (program, sub)
    if kind in LONG_RUNNING or (program == "factory-sim" and "--serve" in argv):
        return kind
    return None


@dataclass
class Sandbox:
    """A repository-root lookalike in which a document's commands run against ``demo``."""

    folder: Path
    demo: Demo
    broker: tuple[str, int]
    password: str = "docs-test-Passw0rd"
    placeholders: dict[str, str] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)
    ingest_client_id: str = field(default_factory=lambda: f"test-docs-ingest-{uuid.uuid4().hex[:10]}")

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for entry in ROOT.iterdir():
            if entry.name not in ("var", ".git"):
                (self.folder / entry.name).symlink_to(entry)
        (self.folder / "var").mkdir()
        (self.folder / "var" / "demo").symlink_to(self.demo.workdir.resolve())
        home = self.folder / "home"
        home.mkdir()
        ours = console_scripts()
        path = [
            d
            for d in os.environ.get("PATH", "").split(os.pathsep)
            if not any((Path(d) / s).exists() for s in ours)
        ]
        drop = ("FACTORYCTL_CONFIG", "XDG_CONFIG_HOME", "VIRTUAL_ENV")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_") and k not in drop}
        self.env.update(
            HOME=str(home),
            PATH=os.pathsep.join(path),
            FACTORY_TOPIC_ROOT=f"test-{uuid.uuid4().hex[:10]}/factory/v1",
            FACTORY_INGEST_CLIENT_ID=self.ingest_client_id,
        )
        self.placeholders["<admin token printed by make demo>"] = self.demo.admin_token
        demo_port = int(self.demo.url.rsplit(":", 1)[1])
        self.ports[8000] = demo_port  # the docs' demo is `make demo`'s, on 127.0.0.1:8000

    def fill_in(self, command: DocCommand) -> str:
        """The command with what the reader types in filled in (see the module docstring)."""
        text = command.text
        for placeholder in PLACEHOLDER.findall(text):
            if placeholder not in self.placeholders:
                raise AssertionError(
                    f"{command.where}: the test does not know what to put for {placeholder}; "
                    f"known: {sorted(self.placeholders)} (add it in tests/docs)"
                )
            text = text.replace(placeholder, shlex.quote(self.placeholders[placeholder]))
        text = text.replace("...", self.password)
        return LOCAL_PORT.sub(
            lambda m: f"{m.group(1)}:{self.ports.get(int(m.group(2)), int(m.group(2)))}", text
        )

    def assign(self, command: DocCommand) -> bool:
        """Apply a bare ``NAME=value`` line to the environment (as the shell would); False if the
        command is not one."""
        words = shlex.split(self.fill_in(command), comments=True)
        if not words or not all("=" in w and w.split("=", 1)[0].isidentifier() for w in words):
            return False
        for word in words:
            name, value = word.split("=", 1)
            self.env[name] = value
        return True

    def run(self, command: DocCommand) -> Ran:
        """Run one command in bash, in the sandbox, and return what it did."""
        script = self.fill_in(command)
        done = subprocess.run(  # noqa: S603 - the documents' own commands
            ["bash", "-c", script],  # noqa: S607
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        return Ran(command, script, done.returncode, done.stdout, done.stderr)

    def start(self, command: DocCommand) -> Service:
        """Start a long-running command in the background on free ports; return once it is ready."""
        words = command.words
        kind = service_kind(words)
        if kind is None or kind not in READY:
            raise AssertionError(
                f"{command.where}: the test does not know when `{command.text}` is ready; add it to "
                "tests/support/doc_runner.py READY, or list the command as not run in tests/docs"
            )
        port = None  # where the service serves its API, if it does
        for flag in PORT_FLAGS:
            if flag in words:
                fixed = int(words[words.index(flag) + 1])
                self.ports[fixed] = free_port()
                if flag != "--metrics-port":
                    port = self.ports[fixed]
        script = self.fill_in(command)
        for flag in PORT_FLAGS:  # the flag's own value (not written as 127.0.0.1:PORT)
            script = re.sub(
                rf"({flag})(\s+|=)(\d+)", lambda m: f"{m.group(1)} {self.ports.get(int(m.group(3)))}", script
            )
        log = self.folder / f"service-{len(self.services)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(  # noqa: S603 - the documents' own commands
                ["bash", "-c", f"exec {script}"],  # noqa: S607
                cwd=self.folder,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        service = Service(command, script, process, log)
        self.services.append(service)
        deadline = time.monotonic() + SERVICE_START_TIMEOUT_S
        while not READY[kind](service, port):
            if process.poll() is not None:
                raise AssertionError(
                    f"{command.where}: `{script}` exited ({process.returncode}) before it was ready:\n"
                    f"{service.output()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{command.where}: `{script}` was not ready in time:\n{service.output()[-3000:]}"
                )
            time.sleep(0.3)
        return service

    def stop(self) -> list[str]:
        """Ctrl-C every service; return what did not stop cleanly (exit status 0)."""
        problems = []
        for service in reversed(self.services):  # all at once: each stops on its own
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGINT)
        for service in reversed(self.services):
            try:
                code = service.process.wait(SERVICE_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait(10)
                problems.append(f"`{service.script}` did not stop on Ctrl-C")
                continue
            if code != 0:
                problems.append(f"`{service.script}` exited {code} on Ctrl-C:\n{service.output()[-2000:]}")
        self.services.clear()
        clear_session(self.broker, self.ingest_client_id)
        return problems
