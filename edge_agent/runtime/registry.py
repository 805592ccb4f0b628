"""Runner plug-ins by task: image tasks share ``ModelRunner``; other kinds register their own.

A runner takes frames (images, or notes for text tasks) and returns predictions; the agent and the
OTA client only see this protocol, so a new kind of model needs a runner here, not agent changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from edge_agent.frames import Frame
from edge_agent.runtime.model import ModelLoadError, ModelRunner, Prediction
from edge_agent.runtime.parcels import ParcelRunner
from edge_agent.runtime.text import TextRunner
from protocol.manifest import ModelManifest
from protocol.messages import LoadedModel, ModelRef


class Runner(Protocol):
    """What the agent needs of a loaded model."""

    slot: str
    manifest: ModelManifest
    dynamic_batch: bool

    @property
    def ref(self) -> ModelRef: ...

    @property
    def loaded(self) -> LoadedModel: ...

    def infer(self, frames: Sequence[Frame]) -> list[Prediction]: ...

    def warm_up(self) -> None: ...


RunnerFactory = Callable[[Path, str, int], Runner]

# task -> factory. Tasks not listed here run on ModelRunner (single image input, task post-processing).
RUNNERS: dict[str, RunnerFactory] = {"notes": TextRunner, "parcels": ParcelRunner}


def build_runner(manifest_path: Path, slot: str, threads: int = 1) -> Runner:
    """Load the model of ``manifest_path`` with the runner its task needs (the runner verifies hashes)."""
    try:
        task = ModelManifest.model_validate_json(manifest_path.read_bytes()).task
    except FileNotFoundError:
        raise ModelLoadError(f"{manifest_path}: manifest file not found") from None
    except (OSError, ValidationError):
        task = None  # let the runner's own load produce the detailed error
    factory = RUNNERS.get(task or "", ModelRunner)
    return factory(manifest_path, slot, threads)
