"""A silent network partition between a gateway and the broker: a TCP proxy that, while
partitioned, swallows every byte both ways and answers nothing (no reset, no FIN), as a cable
pulled two switches away does. Only the MQTT keepalive can notice it."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading


class SilentPartition:
    """Forwards 127.0.0.1:<port> to ``target``; between :meth:`start` and :meth:`heal`, drops."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.partitioned = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._accepting = threading.Thread(target=self._accept, name="partition-accept", daemon=True)
        self._accepting.start()

    def start(self) -> None:
        """From now on nothing gets through, and nobody is told."""
        self.partitioned.set()

    def heal(self) -> None:
        self.partitioned.clear()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), name="partition-pump", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, "client")
        try:
            while not self._stop.is_set():
                if upstream is None and not self.partitioned.is_set():
                    # A connection opened during the partition reaches the broker only once it heals.
                    upstream = socket.create_connection(self.target, timeout=5)
                    sel.register(upstream, selectors.EVENT_READ, "upstream")
                for key, _ in sel.select(timeout=0.1):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data and key.data == "upstream" and self.partitioned.is_set():
                        # The broker gave up on the silent client: the client must not hear it.
                        sel.unregister(key.fileobj)
                        key.fileobj.close()  # type: ignore[union-attr]
                        upstream = None
                        continue
                    if not data:
                        return
                    if self.partitioned.is_set():
                        continue  # swallowed: the sender's TCP stack saw it leave, no one answers
                    to = upstream if key.data == "client" else client
                    if to is not None:
                        to.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
