"""Runner plug-ins by task: image tasks share ``ModelRunner``; other kinds register their own.

A runner takes frames (images, or notes for text tasks) and returns predictions; the agent and the
OTA client only see this protocol, so a new kind of model needs a runner here, not agent changes.
A slot's settings from the gateway config (:class:`SlotSettings`) go to every model loaded into
that slot, the first one and each OTA release alike, so an update never changes a line's facts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from edge_agent.frames import Frame
from edge_agent.runtime.model import ModelLoadError, ModelRunner, Prediction
from edge_agent.runtime.parcel_routes import ParcelLineSettings
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


@dataclass(frozen=True)
class SlotSettings:
    """What the gateway config says about a slot beyond its manifest; kept across model updates."""

    parcels: ParcelLineSettings | None = None  # a parcel line's calibration and sort table


NO_SETTINGS = SlotSettings()

RunnerFactory = Callable[[Path, str, int, SlotSettings], Runner]


def _plain(runner: Callable[[Path, str, int], Runner]) -> RunnerFactory:
    """A factory for runners that take no slot settings (build_runner has refused any given)."""

    def build(manifest_path: Path, slot: str, threads: int, settings: SlotSettings) -> Runner:
        return runner(manifest_path, slot, threads)

    return build


def _parcels(manifest_path: Path, slot: str, threads: int, settings: SlotSettings) -> Runner:
    return ParcelRunner(manifest_path, slot, threads, line=settings.parcels)


# task -> factory. Tasks not listed here run on ModelRunner (single image input, task post-processing).
RUNNERS: dict[str, RunnerFactory] = {"notes": _plain(TextRunner), "parcels": _parcels}


def build_runner(
    manifest_path: Path, slot: str, threads: int = 1, settings: SlotSettings = NO_SETTINGS
) -> Runner:
    """Load the model of ``manifest_path`` with the runner its task needs (the runner verifies hashes).

    ``settings`` are the slot's from the gateway config; a parcels section on a slot whose model
    is not a parcels model is refused here too (config load catches it when the manifest is there
    at start; an OTA release of another task meets it here).
    """
    try:
        task = ModelManifest.model_validate_json(manifest_path.read_bytes()).task
    except FileNotFoundError:
        raise ModelLoadError(f"{manifest_path}: manifest file not found") from None
    except (OSError, ValidationError):
        task = None  # let the runner's own load produce the detailed error
    if settings.parcels is not None and task is not None and task != "parcels":
        raise ModelLoadError(
            f"{manifest_path}: slot {slot} has a 'parcels' section in the gateway config, "
            f"but this model's task is {task!r}, not 'parcels'"
        )
    factory = RUNNERS.get(task or "", _plain(ModelRunner))
    return factory(manifest_path, slot, threads, settings)
