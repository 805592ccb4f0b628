"""Small helpers for running local services: free ports, our console scripts, stopping on a signal."""

from __future__ import annotations

import shutil
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (good enough for starting local services)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def console_script(name: str) -> str:
    """Path of one of our console scripts: next to this interpreter first (a venv), then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name!r} is not installed; run `pip install -e .[edge,cloud]` first")
    return found


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM: a command's main loop waits on it, then stops cleanly."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop
