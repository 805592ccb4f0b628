"""The trainer, run as a process: ``python -m domain_models.cli train defect --data DIR ...``.

The cloud may not import ``domain_models`` (an import-linter contract: the cloud runs where torch
need not be installed), so a run calls the command an engineer would, with the worker's own
interpreter, and reads what it wrote: the manifest, the calibration record and the card. Its
output is kept as a short tail, handed to ``progress`` as it comes so the run view shows it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from cloud.training.schemas import TeachParameters
from protocol.inference import DEFECT_KEY
from protocol.manifest import MANIFEST_SUFFIX, ModelManifest

log = logging.getLogger(__name__)

TRAIN_MODULE = "domain_models.cli"
CARD_NAME = "MODEL_CARD.md"
TAIL_LINES = 40
PROGRESS_EVERY_S = 2.0
# A fit of a few hundred frames takes minutes; hours means a stuck process, not a slow one.
TIMEOUT_S = 4 * 3600.0
THREADS = 2
_NOT_INSTALLED = ("No module named 'domain_models", "No module named 'torch", "cannot import domain_models")


class TrainerError(Exception):
    """The trainer did not write a candidate; the message says why, ``tail`` its last output."""

    def __init__(self, message: str, tail: str) -> None:
        super().__init__(message)
        self.tail = tail


def code_version() -> str:
    """What code trains: the package version, and the source commit when this is a git checkout."""
    try:
        version = metadata.version("factory-edge")
    except metadata.PackageNotFoundError:
        version = "unknown"
    commit = _git_commit(Path(__file__).resolve().parents[2])
    return f"factory-edge {version}" + (f" ({commit})" if commit else "")


def _git_commit(root: Path) -> str | None:
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(  # noqa: S603  # fixed argv, no shell
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip() if done.returncode == 0 else ""
    return commit or None


def train_argv(data: Path, out: Path, name: str, version: str, params: TeachParameters) -> list[str]:
    """The trainer's command line: ``factory-models train defect`` with the run's parameters."""
    return [
        sys.executable,
        "-m",
        TRAIN_MODULE,
        "train",
        "defect",
        "--data",
        str(data),
        "--out",
        str(out),
        "--name",
        name,
        "--version",
        version,
        "--seed",
        str(params.seed),
        "--frr",
        repr(params.frr),
        "--coreset",
        str(params.coreset),
        "--max-images",
        str(params.max_images),
        "--threshold-folds",
        str(params.threshold_folds),
        "--width",
        str(params.width),
        "--height",
        str(params.height),
        "--threads",
        str(THREADS),
    ]


def run_trainer(
    argv: list[str], cwd: Path, progress: Callable[[str], None], timeout_s: float = TIMEOUT_S
) -> str:
    """Run ``argv``; its output's tail. ``progress(tail)`` is called at most every few seconds
    while it runs. TrainerError when it exits non-zero or outlives ``timeout_s``."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    timed_out = threading.Event()
    # The context closes the pipe and reaps the process however the loop ends.
    with subprocess.Popen(  # noqa: S603  # our own interpreter and module, argv without a shell
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:

        def stop() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(timeout_s, stop)
        timer.name = "trainer-timeout"
        timer.daemon = True
        timer.start()
        shown = time.monotonic()
        try:
            assert process.stdout is not None  # noqa: S101  # stdout=PIPE above: typing only
            for line in process.stdout:
                tail.append(line.rstrip())
                if time.monotonic() - shown >= PROGRESS_EVERY_S:
                    progress("\n".join(tail))
                    shown = time.monotonic()
            code = process.wait()
        finally:
            timer.cancel()
            timer.join()
            if process.poll() is None:
                process.kill()
    text = "\n".join(tail)
    if timed_out.is_set():
        raise TrainerError(f"the trainer ran past {timeout_s:.0f} s and was stopped", text)
    if code != 0:
        raise TrainerError(_failure(code, list(tail)), text)
    return text


def _failure(code: int, lines: list[str]) -> str:
    """The trainer's own one-line reason when it gave one, else its exit status."""
    if any(marker in line for line in lines for marker in _NOT_INSTALLED):
        return (
            "the training code is not installed where the Celery worker runs "
            "(pip install -e '.[train]' in the worker's environment)"
        )
    said = [line for line in lines if line.startswith("factory-models ")]
    if said:
        return said[-1]
    return f"the trainer exited with status {code}" + (f": {lines[-1]}" if lines else "")


@dataclass(frozen=True)
class Candidate:
    """What the trainer wrote into its output folder."""

    folder: Path
    manifest_path: Path
    manifest: ModelManifest
    card: str | None
    calibration: dict[str, Any]

    @property
    def files(self) -> list[Path]:
        """Every file of the release: graph, manifest, its listed files, the card."""
        names = [self.manifest.artifact, self.manifest_path.name, *self.manifest.files]
        if self.card is not None:
            names.append(CARD_NAME)
        return [self.folder / n for n in names]


def read_candidate(out: Path, name: str, version: str) -> Candidate:
    """The release ``name`` ``version`` the trainer wrote into ``out``; ValueError when it is not there."""
    manifest_path = out / f"{name}-{version}{MANIFEST_SUFFIX}"
    if not manifest_path.is_file():
        raise ValueError(f"the trainer wrote no {manifest_path.name}")
    manifest = ModelManifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
    card_path = out / CARD_NAME
    calibration_path = out / f"{name}-{version}.calibration.json"
    calibration = json.loads(calibration_path.read_text()) if calibration_path.is_file() else {}
    card = card_path.read_text(encoding="utf-8") if card_path.is_file() else None
    return Candidate(out, manifest_path, manifest, card, calibration)


def figures(candidate: Candidate, facts: dict[str, Any]) -> dict[str, Any]:
    """What the fit measured, for the run view: the threshold and the false-reject rate it
    targets on held-out good frames, the frames of each part of the folder, and, when defects
    were labelled, image AUROC, F1, precision, recall and false rejects on the held-out test/ part."""
    folders: dict[str, int] = {}
    for placed in facts.get("files", []):
        folder = str(placed["path"]).rsplit("/", 1)[0]
        folders[folder] = folders.get(folder, 0) + 1
    metrics = dict(candidate.manifest.metrics)
    return {
        "threshold": candidate.manifest.thresholds.get(DEFECT_KEY),
        "target_false_reject_rate": candidate.calibration.get("frr"),
        # Records before cross-fitting name only their held-out images.
        "threshold_frames": int(
            candidate.calibration.get("threshold_images", len(candidate.calibration.get("holdout", [])))
        ),
        "threshold_folds": int(candidate.calibration.get("folds", 0)),
        "frames": dict(sorted(folders.items())),
        "held_out": metrics or None,
        "held_out_note": None
        if metrics
        else "no frame is labelled with a defect kind, so there is no test/ part to measure AUROC or F1 on",
    }
