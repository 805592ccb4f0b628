"""For training-run tests: datasets of simulated camera-line frames registered in the cloud (good
parts, and optionally defects labelled with their kind), a signing key on disk, a teach queue that
records instead of sending, and one that carries runs out on a thread as the Celery worker would."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import cv2
from sqlalchemy.orm import Session, sessionmaker

from cloud.auth.service import Principal, Role
from cloud.config import CloudSettings
from cloud.datasets.service import apply_labels, register_capture
from cloud.db.dataset_models import CaptureBlob
from cloud.registry.service import put_chunk
from cloud.registry.store import ArtifactStore
from cloud.training.teach import Stores, teach
from protocol.captures import CaptureFile
from protocol.messages import ModelRef
from protocol.signing import generate_private_key, private_key_pem
from simulators.camera_line import CameraLine, CameraLineConfig
from tests.support.captures import T0, manifest

LINE = CameraLineConfig(seed=7, width=160, height=120)
GATEWAY = Principal("token:test-gateway", Role.admin)
LABELLER = Principal("token:test-operator", Role.operator)
# The fastest settings the anomaly pipeline tests train with (tests/domain_models/anomaly).
FAST = {"coreset": 50, "max_images": 20, "width": 128, "height": 96}


def _png(image: object) -> bytes:
    ok, encoded = cv2.imencode(".png", image)  # type: ignore[call-overload]
    assert ok
    return bytes(encoded.tobytes())


def simulated_dataset(
    sessions: sessionmaker[Session],
    captures: ArtifactStore,
    capture_id: str,
    good: int,
    defects: int = 0,
    label: str | None = "good",
    model: ModelRef | None = None,
) -> list[str]:
    """Register ``good`` good frames then ``defects`` defective ones of the simulated line as dataset
    ``capture_id`` (capture label ``label``), each defect labelled with its kind; the kinds."""
    good_line = CameraLine(replace(LINE, defect_rate=0.0))
    bad_line = CameraLine(replace(LINE, defect_rate=1.0))
    images = [good_line.frame(i).image for i in range(good)]
    kinds = []
    for i in range(defects):
        frame = bad_line.frame(good + i)
        images.append(frame.image)
        kinds.append(frame.truth.label)
    files = []
    with sessions.begin() as session:
        for n, image in enumerate(images):
            data = _png(image)
            sha = hashlib.sha256(data).hexdigest()
            put_chunk(session, captures, sha, len(data), 0, data, table=CaptureBlob)
            files.append(
                CaptureFile(name=f"{n + 1:06d}.png", sha256=sha, size_bytes=len(data),
                            captured_at=T0 + timedelta(seconds=n), source="cam1", frame=f"frame-{n}")
            )  # fmt: skip
        found = manifest(capture_id, "gw-a", files, label=label, model=model)
        row, _created = register_capture(session, captures, found, GATEWAY)
        labels: dict[str, str | None] = {f"{good + i + 1:06d}.png": kind for i, kind in enumerate(kinds)}
        if labels:
            apply_labels(session, row, labels, LABELLER)
    return kinds


def signing_key(folder: Path) -> Path:
    """A fresh Ed25519 private key PEM in ``folder`` (0600)."""
    path = folder / "cloud-signing.pem"
    path.write_bytes(private_key_pem(generate_private_key()))
    path.chmod(0o600)
    return path


class RecordingQueue:
    """A TeachQueue that records the runs handed to it; ``down`` makes it refuse them."""

    def __init__(self) -> None:
        self.runs: list[int] = []
        self.down = False

    def enqueue(self, run_id: int) -> None:
        if self.down:
            raise ConnectionError("broker unreachable (test)")
        self.runs.append(run_id)


class ThreadQueue:
    """A TeachQueue that carries each run out on a thread, as the Celery worker would."""

    def __init__(self, sessions: sessionmaker[Session], settings: CloudSettings) -> None:
        self._sessions, self._settings = sessions, settings
        self.threads: list[threading.Thread] = []

    def enqueue(self, run_id: int) -> None:
        stores = Stores.of(self._settings)
        thread = threading.Thread(
            target=teach, args=(self._sessions, self._settings, stores, run_id), name=f"teach-{run_id}"
        )
        thread.start()
        self.threads.append(thread)

    def join(self, timeout_s: float = 600.0) -> None:
        """Wait for every run handed over (no speed is asserted: the bound only stops a hang)."""
        for thread in self.threads:
            thread.join(timeout_s)
