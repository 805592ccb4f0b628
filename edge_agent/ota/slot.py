"""One slot's OTA state: the boot decision after a restart, and what is reported about the slot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_agent.ota.health import SlotMonitor
from edge_agent.ota.store import Pointer, SlotStore
from edge_agent.pipeline import InferenceWorker
from edge_agent.shadow.slot import ShadowSlot
from protocol.manifest import ModelManifest
from protocol.messages import ModelRef, wire_text
from protocol.ota import ChallengerPhase, ChallengerReport, Phase, SlotHealth, SlotReport


def ref_of(manifest_path: Path) -> ModelRef | None:
    """The identity of the model at ``manifest_path`` (None if unreadable)."""
    try:
        m = ModelManifest.model_validate_json(manifest_path.read_bytes())
    except (OSError, ValueError):
        return None
    return ModelRef(name=m.name, version=m.version, sha256=m.sha256)


def boot_manifest(store: SlotStore, factory: Path) -> tuple[Path, str | None]:
    """The manifest a slot starts with, and why it rolled back at boot, if it did.

    A pointer still on trial means the agent died during a health window: the new model never
    proved healthy, so the previous one comes back (and the release is not retried).
    """
    pointer = store.read()
    if pointer is None:
        return factory, None
    if not pointer.trial:
        return Path(pointer.active), None
    back = pointer.previous or str(factory)
    failed = ref_of(Path(pointer.active))
    store.write(Pointer(active=back, previous=None, trial=False))
    if failed is not None:
        store.reject(failed.sha256, pointer.revision)  # not again for the same desired revision
    what = f"{failed.name} {failed.version}" if failed else pointer.active
    return Path(back), f"agent restarted during the health window of {what}; rolled back"


@dataclass
class ChallengerState:
    """The slot's challenger as reported: which release, how far its install got, why it failed."""

    ref: ModelRef
    phase: ChallengerPhase
    error: str | None = None
    manifest: Path | None = None  # the installed copy, once it shadows


class SlotState:
    """The OTA state of one slot, as reported."""

    def __init__(self, worker: InferenceWorker, store: SlotStore, previous: ModelRef | None) -> None:
        self.worker = worker
        self.store = store
        self.monitor = SlotMonitor()
        worker.observer = self.monitor
        self.previous = previous
        self.phase: Phase = "idle"
        self.target: ModelRef | None = None
        self.error: str | None = None
        self.health: SlotHealth | None = None
        self.challenger: ChallengerState | None = None
        self.shadow: ShadowSlot | None = None

    def report(self) -> SlotReport:
        return SlotReport(
            active=self.worker.runner.ref,
            previous=self.previous,
            phase=self.phase,
            target=self.target,
            error=wire_text(self.error, 2000) if self.error else None,
            health=self.health,
            challenger=self._challenger_report(),
        )

    def _challenger_report(self) -> ChallengerReport | None:
        c = self.challenger
        if c is None:
            return None
        shadowing = c.phase == "shadowing" and self.shadow is not None
        return ChallengerReport(
            model=c.ref,
            phase=c.phase,
            error=wire_text(c.error, 2000) if c.error else None,
            compared=self.shadow.compared if shadowing and self.shadow else 0,
            skipped=self.shadow.skipped if shadowing and self.shadow else 0,
        )
