"""Challengers on the gateway: install one beside a slot's model, shadow it, promote it, or drop it.

A challenger goes through the checks of an OTA install (signature, download, hashes, load with the
slot's settings, smoke test on its golden sample, golden set on this CPU) into a release directory
of the slot's store, named by ``challenger.json``; only then does the slot's shadow run it. A
refused one is reported (``failed`` and why) and never runs.

Promotion is a desired state whose slot offer is the installed challenger: no download, no health
window (the shadow run was its trial, on the same frames). The swap is one atomic pointer write,
non-trial, naming the challenger active and the old champion previous (the rollback target); the
worker swaps runners between two micro-batches, so no frame is lost or scored twice. A kill -9
before the write leaves the old champion with its challenger (a retained desired state promotes
again); after it, the start-up finds the pointer naming the challenger and drops
``challenger.json``, so the gateway ends on exactly one champion either way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge_agent.config import AgentConfig, OtaStep
from edge_agent.ota.download import DownloadError, fetch_release
from edge_agent.ota.slot import ChallengerState, SlotState
from edge_agent.ota.store import Pointer
from edge_agent.ota.verify import (
    VerifyError,
    check_offer,
    golden_runner,
    golden_set_check,
    load_release,
    smoke_test,
    write_manifest,
)
from edge_agent.outbox_streams import EventDraft
from edge_agent.runtime import Runner
from edge_agent.runtime.registry import NO_SETTINGS, SlotSettings
from protocol.manifest import MANIFEST_SUFFIX
from protocol.messages import ModelRef, wire_text
from protocol.ota import ChallengerPhase, DesiredState, ModelOffer, Phase
from protocol.shadow import CHALLENGER_EVENT_KIND
from protocol.signing import TrustStore

log = logging.getLogger(__name__)

Level = Literal["info", "warning", "error"]
# Tasks whose runner gives one verdict per frame; a parcels model reports parcels as they cross.
COMPARABLE_TASKS = ("defect", "classification", "notes")


class _Stopped(Exception):
    """The agent stops in the middle of a challenger's install."""


@dataclass(frozen=True)
class Hooks:
    """What the OTA client lends: its champion phase reporting, report publishing, swap notice."""

    set_phase: Callable[[SlotState, Phase, str, Level], None]
    publish_report: Callable[[], None]
    on_swap: Callable[[], None]
    emit: Callable[[EventDraft], None]


class Challengers:
    """The challengers of every slot that has a shadow run, driven by the OTA thread."""

    def __init__(
        self,
        config: AgentConfig,
        slots: dict[str, SlotState],
        factory: dict[str, Path],
        trust: TrustStore,
        stop: threading.Event,
        hooks: Hooks,
    ) -> None:
        self.config = config
        self._slots = slots
        self._factory = factory
        self._trust = trust
        self._stop = stop
        self._hooks = hooks
        self._settings: dict[str, SlotSettings] = {m.slot: m.settings for m in config.models}
        self.revision = 0
        for state in slots.values():
            if state.shadow is not None:
                self._restore(state)

    def _load(self, path: Path, slot: str) -> Runner:
        threads = self.config.runtime.threads
        return load_release(path, slot, threads, self._settings.get(slot, NO_SETTINGS))

    def _restore(self, state: SlotState) -> None:
        """At start: shadow the challenger ``challenger.json`` names, unless a promotion made it champion."""
        store, slot = state.store, state.worker.runner.slot
        path = store.read_challenger()
        if path is None:
            return
        pointer = store.read()
        active = Path(pointer.active) if pointer else self._factory[slot]
        if path.resolve() == active.resolve():
            log.info("slot %s: the challenger was promoted before the restart; it serves", slot)
            store.clear_challenger()
            return
        try:
            runner = self._load(path, slot)
            runner.warm_up()
        except (VerifyError, RuntimeError) as exc:
            log.warning("slot %s: installed challenger unusable at start (%s); dropped", slot, exc)
            store.clear_challenger()
            return
        state.challenger = ChallengerState(runner.ref, "shadowing", manifest=path)
        if state.shadow is not None:
            state.shadow.attach(runner)

    # ---- desired state ------------------------------------------------------------------------
    def apply(self, desired: DesiredState) -> None:
        """Install, keep or drop each slot's challenger as ``desired`` says."""
        self.revision = desired.revision
        for slot, state in self._slots.items():
            if state.shadow is None:
                continue
            offer = desired.challengers.get(slot)
            try:
                if offer is None or offer.manifest.sha256 == state.worker.runner.manifest.sha256:
                    self._drop(state, "no longer asked for" if offer is None else "it serves the slot now")
                else:
                    self._want(state, offer)
            except _Stopped:
                return
            except Exception as exc:  # noqa: BLE001 - a store failure must not end the OTA thread
                log.exception(
                    "ota: slot %s: challenger %s failed unexpectedly", slot, offer and offer.manifest.version
                )
                if state.challenger is not None:
                    state.challenger.phase, state.challenger.error = "failed", f"unexpected: {exc}"
        for slot in desired.challengers.keys() - self._slots.keys():
            log.warning(
                "ota: desired state names a challenger for slot %s, which this gateway does not have", slot
            )

    def _want(self, state: SlotState, offer: ModelOffer) -> None:
        m = offer.manifest
        current = state.challenger
        same = current is not None and current.ref.sha256 == m.sha256
        if same and current is not None and current.phase == "shadowing":
            return
        rejected_at = state.store.rejected().get(m.sha256, 0)
        if rejected_at >= self.revision:  # refused at this revision already; a newer one tries again
            if not (same and current is not None and current.phase == "failed"):
                ref = ModelRef(name=m.name, version=m.version, sha256=m.sha256)
                state.challenger = ChallengerState(
                    ref, "failed", f"refused at desired revision {rejected_at}"
                )
            return
        self._install(state, offer)

    def _drop(self, state: SlotState, why: str) -> None:
        if state.challenger is None:
            return
        shadow, was = state.shadow, state.challenger
        if shadow is not None:
            shadow.detach()
        state.store.clear_challenger()
        state.challenger = None
        self._event(
            state, was.ref, "removed", "info", f"challenger {was.ref.name} {was.ref.version} removed: {why}"
        )

    def _install(self, state: SlotState, offer: ModelOffer) -> None:
        m, slot, store = offer.manifest, state.worker.runner.slot, state.store
        ref = ModelRef(name=m.name, version=m.version, sha256=m.sha256)
        state.challenger = ChallengerState(ref, "downloading")
        champion = state.worker.runner.manifest
        try:
            if m.task != champion.task:
                raise VerifyError(f"a {m.task} model cannot shadow the slot's {champion.task} model")
            if m.task not in COMPARABLE_TASKS:
                raise VerifyError(f"a {m.task} model gives no verdict per frame to compare; not shadowed")
            check_offer(offer, self._trust, None)  # signature; the version order matters at promotion
            self._step(state, "downloading", f"downloading challenger {m.name} {m.version}")
            staged = store.staging(m.sha256)
            fetch_release(
                offer,
                staged,
                self.config.ota.download_timeout_s,
                self.config.ota.download_retries,
                self._progress,
            )
            self._step(state, "verifying", f"verifying challenger {m.name} {m.version}")
            path = write_manifest(staged, m)
            runner = self._load(path, slot)
            self._step(state, "smoke_testing", f"smoke-testing challenger {m.name} {m.version}")
            reference = golden_runner(runner, path, self._settings.get(slot, NO_SETTINGS))
            log.info("ota: slot %s: challenger smoke test passed: %s", slot, smoke_test(reference, path))
            golden_set_check(reference, path)
            release = store.install(staged, m.version, m.sha256)
            installed = release / f"{m.name}{MANIFEST_SUFFIX}"
            runner = self._load(installed, slot)
            runner.warm_up()
        except (VerifyError, DownloadError) as exc:
            if isinstance(exc, VerifyError):
                store.discard_staging(m.sha256)  # keep a cut download's bytes for a retry
            store.reject(m.sha256, self.revision)
            state.challenger = ChallengerState(ref, "failed", str(exc))
            self._event(state, ref, "failed", "error", f"challenger {m.name} {m.version} refused: {exc}")
            return
        shadow = state.shadow
        if shadow is None:  # apply() installs only where a shadow runs
            return
        shadow.detach()  # a previous challenger's window is recorded; it runs no more
        store.write_challenger(installed, self.revision)
        shadow.attach(runner)
        state.challenger = ChallengerState(ref, "shadowing", manifest=installed)
        self._event(
            state, ref, "shadowing", "info", f"challenger {m.name} {m.version} shadows {champion.version}"
        )

    def _progress(self, have: int) -> None:
        if self._stop.is_set():
            raise _Stopped

    def _step(self, state: SlotState, phase: ChallengerPhase, message: str) -> None:
        if self._stop.is_set():
            raise _Stopped
        if state.challenger is not None:  # set by _install before any step
            state.challenger.phase = phase
            self._event(state, state.challenger.ref, phase, "info", message)

    def _event(self, state: SlotState, ref: ModelRef, phase: str, level: Level, message: str) -> None:
        slot = state.worker.runner.slot
        log.log(logging.INFO if level == "info" else logging.WARNING, "ota: slot %s: %s", slot, message)
        self._hooks.publish_report()
        self._hooks.emit(
            EventDraft(
                kind=CHALLENGER_EVENT_KIND,
                level=level,
                message=wire_text(message, 2000),
                details={
                    "slot": slot,
                    "phase": phase,
                    "revision": self.revision,
                    "challenger_version": ref.version,
                    "active_version": state.worker.runner.ref.version,
                },
            )
        )

    # ---- promotion ----------------------------------------------------------------------------
    def promotes(self, state: SlotState, offer: ModelOffer) -> bool:
        """Whether ``offer`` for the slot is its installed, shadowing challenger."""
        c = state.challenger
        return c is not None and c.phase == "shadowing" and c.ref.sha256 == offer.manifest.sha256

    def promote(self, state: SlotState, offer: ModelOffer, revision: int) -> None:
        """Make the challenger the slot's model in one pointer write; the old one becomes previous."""
        m, worker, store = offer.manifest, state.worker, state.store
        slot, challenger, set_phase = worker.runner.slot, state.challenger, self._hooks.set_phase
        if challenger is None or challenger.manifest is None:  # promotes() said it is installed
            return
        state.target, state.error, state.health = challenger.ref, None, None
        try:
            check_offer(offer, self._trust, worker.runner.manifest)  # signature and anti-rollback still hold
        except VerifyError as exc:
            state.error = str(exc)
            store.reject(m.sha256, revision)
            set_phase(state, "failed", f"promotion of {m.name} {m.version} refused: {exc}", "error")
            return
        set_phase(state, "swapping", f"promoting challenger {m.name} {m.version}", "info")
        shadow = state.shadow
        runner = shadow.detach() if shadow is not None else None  # its last window is recorded
        if runner is None or runner.manifest.sha256 != m.sha256:
            runner = self._load(challenger.manifest, slot)
            runner.warm_up()
        if self._paused("promoting", state):
            return
        pointer = store.read()
        old_path = pointer.active if pointer else str(self._factory[slot])
        store.write(
            Pointer(active=str(challenger.manifest), previous=old_path, trial=False, revision=revision)
        )
        if self._paused("promoted", state):
            return
        old = worker.swap_runner(runner)
        state.previous = old.ref
        store.clear_challenger()
        state.challenger, state.target = None, None
        self._hooks.on_swap()
        set_phase(
            state,
            "committed",
            f"challenger {m.name} {m.version} promoted; {old.ref.name} {old.ref.version} kept as the rollback target",
            "info",
        )
        store.prune({challenger.manifest.resolve().parent, Path(old_path).resolve().parent})

    def _paused(self, step: OtaStep, state: SlotState) -> bool:
        if self.config.ota.test_pause_at != step:
            return False
        self._hooks.set_phase(state, state.phase, f"paused at {step} (test hook)", "warning")
        self._stop.wait()
        return True
