"""The capture store: one folder per capture, its frames and a ``state.json``, under a byte cap.

    <dir>/<capture_id>/state.json      the capture's record (order, files with SHA-256, upload state)
    <dir>/<capture_id>/NNNNNN.png      its frames

A frame is written to a temporary file, fsynced and renamed, and only then listed in the record
(itself replaced atomically), so after a crash every listed file is whole; a frame file the record
does not list is removed when the store opens. The byte cap covers the frames of every capture
still on disk; a registered capture's frames are deleted and its record kept, so an order the
cloud repeats is not captured twice.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from edge_agent.durable import atomic_write
from protocol.captures import CaptureFile, CaptureManifest, CaptureOrigin, CaptureStatus
from protocol.messages import ModelRef, utcnow

log = logging.getLogger(__name__)

STATE = "state.json"
Phase = Literal["recording", "finished", "registered", "rejected"]


class Selector(BaseModel):
    """Which frames a drift capture takes: those near the threshold, and a random share of the rest."""

    near_threshold: float
    sample_rate: float


class CaptureRecord(BaseModel):
    """A capture on this gateway: what was asked, what was captured, how far its upload got."""

    capture_id: str
    slot: str
    origin: CaptureOrigin
    label: str | None = None
    note: str | None = None
    requested_by: str
    requested_frames: int
    max_bytes: int
    requested_at: datetime
    selector: Selector | None = None
    phase: Phase = "recording"
    status: CaptureStatus | None = None
    reason: str | None = None
    started_at: datetime
    ended_at: datetime | None = None
    model: ModelRef | None = None
    files: list[CaptureFile] = []
    uploaded: list[str] = []  # SHA-256 of the files the cloud confirmed it holds
    problem: str | None = None  # why the cloud refused it (phase rejected)

    @property
    def bytes(self) -> int:
        """Bytes of the capture's frames."""
        return sum(f.size_bytes for f in self.files)

    def manifest(self, gateway_id: str, line: str, station: str) -> CaptureManifest:
        """What the gateway registers with the cloud (a finished capture)."""
        if self.status is None or self.ended_at is None:
            raise ValueError(f"capture {self.capture_id} is still recording")
        return CaptureManifest(
            capture_id=self.capture_id,
            gateway_id=gateway_id,
            line=line,
            station=station,
            slot=self.slot,
            origin=self.origin,
            label=self.label,
            note=self.note,
            requested_by=self.requested_by,
            requested_frames=self.requested_frames,
            max_bytes=self.max_bytes,
            status=self.status,
            reason=self.reason,
            started_at=self.started_at,
            ended_at=self.ended_at,
            model=self.model,
            files=tuple(self.files),
        )


class CaptureFull(Exception):
    """A frame that does not fit: the capture's byte cap or the store's; the message says which."""


class CaptureStore:
    """Capture folders under ``root``, thread-safe (the recorder writes, the uploader reads)."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._records: dict[str, CaptureRecord] = {}
        root.mkdir(parents=True, exist_ok=True)
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            self._load(folder)

    def _load(self, folder: Path) -> None:
        try:
            record = CaptureRecord.model_validate_json((folder / STATE).read_bytes())
        except (OSError, ValidationError) as exc:
            # Never deleted: what is in it may be the only copy of frames someone asked for.
            log.error("captures: %s has no readable %s (%s); left as it is, not uploaded", folder, STATE, exc)
            return
        listed = {f.name for f in record.files}
        for path in folder.iterdir():
            if path.name != STATE and path.name not in listed:
                log.info(
                    "captures: %s: removing %s, written but never recorded (a stop mid-write)",
                    folder.name,
                    path.name,
                )
                path.unlink()
        self._records[record.capture_id] = record

    @property
    def used_bytes(self) -> int:
        """Bytes of frames on disk (registered captures' frames are deleted)."""
        with self._lock:
            return sum(r.bytes for r in self._records.values() if r.phase != "registered")

    def has(self, capture_id: str) -> bool:
        with self._lock:
            return capture_id in self._records

    def get(self, capture_id: str) -> CaptureRecord:
        """A copy of the record (the store's own changes only under its lock)."""
        with self._lock:
            return self._records[capture_id].model_copy(deep=True)

    def in_phase(self, phase: Phase) -> list[CaptureRecord]:
        """Copies of the records in ``phase``, oldest request first."""
        with self._lock:
            found = [r.model_copy(deep=True) for r in self._records.values() if r.phase == phase]
        return sorted(found, key=lambda r: (r.requested_at, r.capture_id))

    def file_path(self, capture_id: str, name: str) -> Path:
        return self.root / capture_id / name

    def _save(self, record: CaptureRecord) -> None:
        folder = self.root / record.capture_id
        folder.mkdir(exist_ok=True)
        atomic_write(folder / STATE, record.model_dump_json().encode())
        self._records[record.capture_id] = record

    def create(self, record: CaptureRecord) -> None:
        """Keep a new capture (recording, or already finished when refused)."""
        with self._lock:
            if record.capture_id in self._records:
                raise ValueError(f"capture {record.capture_id} exists")
            self._save(record)

    def add_frame(
        self, capture_id: str, png: bytes, file: CaptureFile, model: ModelRef | None = None
    ) -> CaptureRecord:
        """Write one frame and list it; CaptureFull when it would pass a cap (nothing written).

        ``model``: what served the slot; the record keeps the one of its first frame."""
        with self._lock:
            record = self._records[capture_id].model_copy(deep=True)
            if record.bytes + len(png) > record.max_bytes:
                raise CaptureFull(f"the capture's byte cap of {record.max_bytes} bytes is reached")
            used = sum(r.bytes for r in self._records.values() if r.phase != "registered")
            if used + len(png) > self.max_bytes:
                raise CaptureFull(f"the capture store is full ({used} of {self.max_bytes} bytes)")
            atomic_write(self.file_path(capture_id, file.name), png)
            record.files.append(file)
            record.model = record.model or model
            self._save(record)
            return record

    def finish(
        self, capture_id: str, status: CaptureStatus, reason: str | None, requested_frames: int | None = None
    ) -> CaptureRecord:
        """End a recording: complete, or stopped (fewer frames) or refused, with the reason.

        ``requested_frames``: what the capture turned out to ask for, when only its end says (a
        shadow window asks for the frames where its two models disagreed)."""
        with self._lock:
            record = self._records[capture_id].model_copy(deep=True)
            record.phase, record.status, record.reason, record.ended_at = "finished", status, reason, utcnow()
            if requested_frames is not None:
                record.requested_frames = requested_frames
            self._save(record)
            return record

    def mark_uploaded(self, capture_id: str, sha256: str) -> None:
        """The cloud holds this file: it is never sent again."""
        with self._lock:
            record = self._records[capture_id].model_copy(deep=True)
            if sha256 not in record.uploaded:
                record.uploaded.append(sha256)
                self._save(record)

    def forget_uploads(self, capture_id: str) -> None:
        """The cloud no longer holds what it confirmed (a restored database): upload again."""
        with self._lock:
            record = self._records[capture_id].model_copy(deep=True)
            record.uploaded = []
            self._save(record)

    def mark_registered(self, capture_id: str) -> None:
        """The cloud keeps the capture as a dataset: delete its frames, keep the record."""
        with self._lock:
            record = self._records[capture_id].model_copy(deep=True)
            record.phase = "registered"
            self._save(record)
            for file in record.files:
                self.file_path(capture_id, file.name).unlink(missing_ok=True)

    def mark_rejected(self, capture_id: str, problem: str) -> None:
        """The cloud refuses the capture for good: keep everything, upload it no more."""
        with self._lock:
            record = self._records[capture_id].model_copy(deep=True)
            record.phase, record.problem = "rejected", problem
            self._save(record)
