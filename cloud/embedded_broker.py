"""An in-process MQTT broker (amqtt) for the embedded profile: the demo and single-machine plants.

It speaks MQTT 3.1.1 with QoS 1, retained messages and last-will, which is all the platform
needs, but it does not deliver ``$share/...`` subscriptions: run one ingest worker with a plain
subscription against it. Production uses Mosquitto or EMQX.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

from amqtt.broker import Broker

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (good enough for starting local services)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedBroker:
    """amqtt running on its own event loop in a daemon thread; ``start()`` returns once it listens."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port if port else free_port(host)
        self._loop = asyncio.new_event_loop()
        self._broker: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        self._thread = threading.Thread(target=self._run, name="embedded-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"embedded MQTT broker did not start on {self.host}:{self.port} in {timeout}s")
        if self._error is not None:
            raise RuntimeError(
                f"embedded MQTT broker failed to start on {self.host}:{self.port}: {self._error}"
            )
        log.warning(
            "embedded MQTT broker listening on %s (INSECURE: anonymous, no TLS - demo profile only)", self.url
        )

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        if self._broker is not None and self._loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                future.result(timeout)
            except Exception:  # noqa: BLE001 - shutting down; the loop stops regardless
                log.warning("embedded broker shutdown did not finish cleanly", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        try:
            self._broker = Broker(config, loop=self._loop)
            self._loop.run_until_complete(self._broker.start())
        except Exception as exc:  # noqa: BLE001 - reported to start() and re-raised there
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()
