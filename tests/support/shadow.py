"""For shadow-run tests: frames of known brightness, runners that are slow or fail, an event sink."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge_agent.frames import Frame
from edge_agent.outbox_streams import EventDraft
from edge_agent.runtime import Prediction, Runner, build_runner
from edge_agent.shadow.config import ShadowConfig
from protocol.messages import LoadedModel, ModelRef, utcnow
from protocol.shadow import SHADOW_EVENT_KIND, ShadowComparison
from tests.support.ota_kit import BRIGHT, DARK, GOOD_BIAS, write_model

# The champion calls dark frames good and bright ones scratch; this challenger calls every frame scratch.
ALL_SCRATCH_BIAS = (-5.0, 5.0)
# Shadow settings of the OTA challenger tests: every frame compared, short windows.
SHADOW = ShadowConfig(budget_ms=10_000, max_backlog=None, window_frames=12)


def tiny_runner(folder: Path, version: str, bias: tuple[float, float]) -> Runner:
    """The OTA kit's tiny defect model (``GOOD_BIAS``: dark good, bright scratch), loaded for slot defect."""
    return build_runner(write_model(folder / version, "tiny-defect", version, bias), "defect")


def champion_runner(folder: Path) -> Runner:
    return tiny_runner(folder, "1.0.0", GOOD_BIAS)


def frames(n: int, prefix: str = "f") -> list[Frame]:
    """``n`` flat frames, every third one bright (a scratch to the champion), the rest dark."""
    return [
        Frame(
            "cam",
            f"{prefix}{i:04d}",
            utcnow(),
            np.full((24, 32, 3), BRIGHT if i % 3 == 0 else DARK, np.uint8),
        )
        for i in range(n)
    ]


class SlowRunner:
    """Another runner that sleeps ``ms_per_frame`` per frame first: slower than any budget it is given."""

    def __init__(self, inner: Runner, ms_per_frame: float) -> None:
        self.inner = inner
        self.ms_per_frame = ms_per_frame
        self.slot = inner.slot
        self.manifest = inner.manifest
        self.dynamic_batch = inner.dynamic_batch
        self.frames_run = 0

    @property
    def ref(self) -> ModelRef:
        return self.inner.ref

    @property
    def loaded(self) -> LoadedModel:
        return self.inner.loaded

    def infer(self, frames: Sequence[Frame]) -> list[Prediction]:
        time.sleep(self.ms_per_frame * len(frames) / 1000.0)
        self.frames_run += len(frames)
        return self.inner.infer(frames)

    def warm_up(self) -> None:
        self.inner.warm_up()


class FailingRunner(SlowRunner):
    """A runner that raises on every batch."""

    def __init__(self, inner: Runner) -> None:
        super().__init__(inner, 0.0)

    def infer(self, frames: Sequence[Frame]) -> list[Prediction]:
        raise RuntimeError("challenger bug")


class Events:
    """An ``emit`` callable that keeps every event draft."""

    def __init__(self) -> None:
        self.drafts: list[EventDraft] = []
        self._lock = threading.Lock()

    def __call__(self, draft: EventDraft) -> None:
        with self._lock:
            self.drafts.append(draft)

    def records(self) -> list[ShadowComparison]:
        with self._lock:
            found = [d for d in self.drafts if d.kind == SHADOW_EVENT_KIND]
        return [ShadowComparison.from_details(d.details) for d in found]

    def of(self, kind: str) -> list[EventDraft]:
        with self._lock:
            return [d for d in self.drafts if d.kind == kind]
