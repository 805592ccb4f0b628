"""A small process supervisor for the demo and the virtual fleet.

Each service runs as its own process (as it would in a plant), with its output in a log file.
A process that dies unexpectedly is restarted with backoff, so the rest of the platform keeps
facing the same neighbours it would face in production: ones that crash and come back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


@dataclass
class Service:
    """One supervised command."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    restart: bool = True
    # Higher tiers stop first (gateways before the cloud before the broker), so each piece still
    # has its neighbours while it shuts down: an agent can publish its death before the broker goes.
    tier: int = 0
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0


class Supervisor:
    """Starts services, restarts crashed ones, and stops them tier by tier."""

    def __init__(self, poll_s: float = 0.5) -> None:
        self._services: list[Service] = []
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def services(self) -> list[Service]:
        return list(self._services)

    def add(self, service: Service, start: bool = True) -> Service:
        with self._lock:
            self._services.append(service)
            if start:
                self._spawn(service)
        return service

    def start(self) -> None:
        """Begin watching the services (restarts happen on this thread)."""
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def wait_forever(self) -> None:
        """Block until ``stop()`` is called from elsewhere (a signal handler, say)."""
        while not self._stop.wait(1.0):
            pass

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop services tier by tier (highest first): SIGTERM a tier, wait, SIGKILL stragglers."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            for tier in sorted({s.tier for s in self._services}, reverse=True):
                self._stop_group([s for s in self._services if s.tier == tier], timeout_s)

    def _stop_group(self, group: list[Service], timeout_s: float) -> None:
        for service in group:
            proc = service.process
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for service in group:
            proc = service.process
            if proc is None:
                continue
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", service.name, timeout_s)
                proc.kill()
                proc.wait(5)
            _reap_group(service, deadline)

    def _spawn(self, service: Service) -> None:
        service.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **service.env}
        with service.log_path.open("ab") as out:
            service.process = subprocess.Popen(  # noqa: S603 - argv built by us, no shell
                list(service.argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops children in order
            )
        log.debug("started %s (pid %d): %s", service.name, service.process.pid, " ".join(service.argv))

    def _watch(self) -> None:
        while not self._stop.wait(self._poll_s):
            with self._lock:
                for service in self._services:
                    self._check(service)

    def _check(self, service: Service) -> None:
        proc = service.process
        if proc is None or proc.poll() is None or self._stop.is_set():
            return
        now = time.monotonic()
        if not service.restart:
            return
        if service.next_start == 0.0:
            delay = min(MAX_BACKOFF_S, 2.0**service.restarts)
            service.next_start = now + delay
            log.warning(
                "%s %s; restarting in %.0fs (log: %s)", service.name, how_it_ended(proc.returncode), delay,
                service.log_path,
            )  # fmt: skip
            return
        if now >= service.next_start:
            service.restarts += 1
            service.next_start = 0.0
            self._spawn(service)


def how_it_ended(code: int) -> str:
    """A process's end in words: 'stopped by signal SIGTERM' rather than a bare exit code.

    Popen reports a process killed by a signal as -N; a shell or a runtime that dies "of" a
    signal exits with 128+N. Code 0 alone says the process chose to stop.
    """
    number = -code if code < 0 else code - 128 if 128 < code < 128 + signal.NSIG else None
    if number is not None:
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        else:
            name = f"signal {name}"
        return f"stopped by {name}" + (f" (exit code {code})" if code > 0 else "")
    if code == 0:
        return "exited with code 0 (it stopped by itself, or was stopped from outside the demo)"
    return f"exited with code {code}"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_group(service: Service, deadline: float) -> None:
    """Wait for the service's own children (each service leads its own process group), then kill
    what is left: a worker's pool or scheduler must not outlive the service it belongs to."""
    if service.process is None:
        return
    pgid = service.process.pid
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(pgid):
        log.warning("%s left child processes behind; killing them", service.name)
        with contextlib.suppress(ProcessLookupError):  # it may have exited meanwhile
            os.killpg(pgid, signal.SIGKILL)
