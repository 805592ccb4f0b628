"""Maintenance notes from a folder: ``.txt`` files (one note each) and ``.jsonl`` files (one per line).

Operators' tools drop notes into the folder (write to a temporary name, then rename, so a note is
never read half-written). With ``watch`` the folder is polled: new files and lines appended to a
``.jsonl`` file are read once each; without it the folder is replayed once and the source ends.
A ``.jsonl`` line is ``{"text": "...", "id": "optional reference"}`` or a bare JSON string.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np

from edge_agent.config_sources import NotesSourceConfig
from edge_agent.frames import DropPolicy, Frame
from edge_agent.sources.base import FrameSink, Source
from protocol.messages import utcnow

log = logging.getLogger(__name__)

MAX_REF_CHARS = 256  # ResultItem.frame limit
_NO_IMAGE = np.zeros((0, 0, 3), dtype=np.uint8)


class NotesSource(Source[NotesSourceConfig]):
    """Notes in file-name order; BLOCK policy so every note reaches the model."""

    policy = DropPolicy.BLOCK
    config_type = NotesSourceConfig

    def __init__(self, config: NotesSourceConfig, sink: FrameSink, stop: threading.Event) -> None:
        super().__init__(config, sink, stop)
        self._done: set[str] = set()  # .txt files already emitted
        self._offsets: dict[str, int] = {}  # .jsonl bytes consumed (complete lines only)
        self._lines: dict[str, int] = {}  # .jsonl lines consumed, for references

    def _emit_note(self, ref: str, text: str) -> None:
        text = text.strip()
        if not text:
            log.warning("source %s: empty note %s skipped", self.name, ref)
            return
        if len(text) > self.config.max_chars:
            log.warning(
                "source %s: note %s cut from %d to %d chars", self.name, ref, len(text), self.config.max_chars
            )
            text = text[: self.config.max_chars]
        self.emit(Frame(self.name, ref[:MAX_REF_CHARS], utcnow(), _NO_IMAGE, text=text))

    def _read_txt(self, path: Path) -> None:
        if path.name in self._done:
            return
        self._done.add(path.name)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            log.warning("source %s: cannot read %s: %s", self.name, path, exc)
            return
        self._emit_note(path.name, text)

    def _read_jsonl(self, path: Path) -> None:
        start = self._offsets.get(path.name, 0)
        try:
            with path.open("rb") as fh:
                fh.seek(start)
                data = fh.read()
        except OSError as exc:
            log.warning("source %s: cannot read %s: %s", self.name, path, exc)
            return
        end = data.rfind(b"\n") + 1  # a line still being written waits for its newline
        self._offsets[path.name] = start + end
        for raw in data[:end].decode("utf-8", errors="replace").splitlines():
            number = self._lines.get(path.name, 0) + 1
            self._lines[path.name] = number
            if self._stop.is_set():
                return
            if not raw.strip():
                continue
            ref = f"{path.name}:{number}"
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                log.warning("source %s: %s is not JSON (%s), skipped", self.name, ref, exc)
                continue
            if isinstance(row, str):
                self._emit_note(ref, row)
            elif isinstance(row, dict) and isinstance(row.get("text"), str):
                self._emit_note(str(row.get("id") or ref), row["text"])
            else:
                log.warning("source %s: %s has no 'text' string, skipped", self.name, ref)

    def scan(self) -> int:
        """Read every new note in the folder once; return how many files matched."""
        files = sorted(p for p in self.config.path.glob(self.config.pattern) if p.is_file())
        for path in files:
            if self._stop.is_set():
                break
            if path.suffix == ".jsonl":
                self._read_jsonl(path)
            else:
                self._read_txt(path)
        return len(files)

    def run(self) -> None:
        """Replay the folder once, or keep polling it with ``watch``."""
        cfg = self.config
        while not self._stop.is_set():
            count = self.scan()
            if not cfg.watch:
                log.info("source %s: read %d note file(s) from %s", self.name, count, cfg.path)
                return
            self._stop.wait(cfg.poll_s)
