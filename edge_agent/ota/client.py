"""The OTA client: follows the retained desired state, one slot at a time, on its own thread.

download -> verify -> smoke test -> swap -> health window -> commit, or roll back and say why.
Every phase change is published as the retained ReportedState and as an ``ota`` event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from edge_agent.config import AgentConfig, OtaStep
from edge_agent.link import MqttLink
from edge_agent.ota.challenger import Challengers, Hooks
from edge_agent.ota.desired_gate import DesiredGate
from edge_agent.ota.download import DownloadError, fetch_release
from edge_agent.ota.health import judge
from edge_agent.ota.slot import SlotState, ref_of
from edge_agent.ota.store import Pointer, SlotStore
from edge_agent.ota.verify import (
    GoldenSetRefused,
    VerifyError,
    check_offer,
    golden_runner,
    golden_set_check,
    load_release,
    smoke_test,
    write_manifest,
)
from edge_agent.outbox_streams import EventDraft
from edge_agent.pipeline import InferenceWorker
from edge_agent.runtime.registry import NO_SETTINGS, SlotSettings
from edge_agent.shadow.slot import ShadowSlot
from protocol.desired_signing import admit
from protocol.manifest import MANIFEST_SUFFIX, ModelManifest
from protocol.messages import ModelRef, WireError, decode, encode, utcnow, wire_text
from protocol.ota import DesiredRefusal, DesiredState, ModelOffer, Phase, ReportedState
from protocol.signing import TrustStore, trust_store_from
from protocol.topics import Channel, TopicSpace

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 2.0


class _Stopped(Exception):
    """The agent is stopping in the middle of an update."""


class OtaClient:
    """Owns the OTA thread; the agent feeds it desired-state payloads from the link."""

    def __init__(
        self,
        config: AgentConfig,
        link: MqttLink,
        topics: TopicSpace,
        workers: dict[str, InferenceWorker],
        factory: dict[str, Path],
        on_swap: Callable[[], None],
        stop: threading.Event,
        boot_errors: dict[str, str] | None = None,
        *,
        emit_event: Callable[[EventDraft], None],
        shadows: dict[str, ShadowSlot] | None = None,
    ) -> None:
        self.config = config
        self._emit_event = emit_event
        self.cfg = config.ota
        self._link = link
        self._factory = factory
        # A slot's config settings (a parcel line's calibration) go with every release loaded into it.
        self._settings: dict[str, SlotSettings] = {m.slot: m.settings for m in config.models}
        self._on_swap = on_swap
        self._stop = stop
        self.trust: TrustStore = trust_store_from(self.cfg.trusted_keys, self.cfg.revoked_keys)
        self._reported_topic = topics.topic(config.gateway_id, Channel.REPORTED)
        self.slots: dict[str, SlotState] = {}
        for slot, worker in workers.items():
            store = SlotStore(config.models_dir, slot)
            pointer = store.read()
            previous = ref_of(Path(pointer.previous)) if pointer and pointer.previous else None
            state = SlotState(worker, store, previous)
            if boot_errors and slot in boot_errors:
                state.phase, state.error = "rolled_back", boot_errors[slot]
            state.shadow = (shadows or {}).get(slot)
            self.slots[slot] = state
        hooks = Hooks(self._set, self._publish_report, on_swap, emit_event)
        self.challengers = Challengers(config, self.slots, factory, self.trust, stop, hooks)
        self.desired_gate = DesiredGate(
            trust_store_from(self.cfg.desired_keys, self.cfg.desired_revoked_keys), config.models_dir
        )
        self.revision = self.desired_gate.revision
        self.rollout_id: str | None = None
        self.refused: DesiredRefusal | None = None
        self._pending: DesiredState | None = None
        self._refusals: deque[DesiredRefusal] = deque(maxlen=8)
        self._cond = threading.Condition()
        self._report_due = True
        self._reported_epoch = 0
        self._health_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="ota", daemon=True)

    # ---- outside world -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the OTA thread."""
        self._thread.start()

    def join(self, timeout: float) -> bool:
        """Wait for the thread after the stop event; False if it is still alive."""
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def on_desired(self, payload: bytes) -> None:
        """Link callback (paho thread): keep only the latest desired state for the OTA thread."""
        if not payload:
            return  # a cleared retained message
        try:
            desired = decode(DesiredState, payload)
        except WireError as exc:
            log.warning("ota: bad desired state ignored: %s", exc.reason)
            return
        if desired.gateway_id != self.config.gateway_id:
            log.warning("ota: desired state for gateway %s on my topic ignored", desired.gateway_id)
            return
        # Signature and expiry first, so a forged statement with a huge revision cannot push the
        # cloud's real one out of the single pending place; the revision is judged on the thread.
        refusal = admit(desired, self.desired_gate.trust, None, utcnow())
        with self._cond:
            if refusal is not None:
                self._refusals.append(refusal)
            elif self._pending is None or desired.revision >= self._pending.revision:
                self._pending = desired
            self._cond.notify_all()

    def reported(self) -> ReportedState:
        """What this gateway runs now and how far the latest revision got."""
        return ReportedState(
            gateway_id=self.config.gateway_id,
            desired_revision=self.revision,
            rollout_id=self.rollout_id,
            slots={slot: state.report() for slot, state in self.slots.items()},
            timestamp=utcnow(),
            refused=self.refused,
        )

    # ---- thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                if self._pending is None and not self._refusals:
                    self._cond.wait(timeout=0.5)
                desired, self._pending = self._pending, None
                refusals = list(self._refusals)
                self._refusals.clear()
            for early in refusals:
                self._refuse(early)
            if self._link.epoch != self._reported_epoch:
                self._report_due = True  # a reconnect: refresh the retained report
            if time.monotonic() - self._health_at >= self.cfg.report_interval_s:
                self._refresh_health()
            if self._report_due and self._link.connected:
                self._reported_epoch = self._link.epoch
                self._publish_report()
            if desired is None:
                continue
            refusal = self.desired_gate.admit(desired, utcnow())
            if refusal is not None:
                self._refuse(refusal)
                continue
            self.refused = None
            self.revision, self.rollout_id = desired.revision, desired.rollout_id
            self._report_due = True
            for slot, offer in desired.slots.items():
                state = self.slots.get(slot)
                if state is None:
                    log.warning("ota: desired state names slot %s, which this gateway does not have", slot)
                    continue
                try:
                    self._apply(state, offer, desired.revision)
                except _Stopped:
                    return
                except Exception as exc:
                    # A disk or store failure must not kill the OTA thread; the pointer on disk is
                    # still one of the two complete states, and the report says what went wrong.
                    log.exception(
                        "ota: slot %s: update to %s failed unexpectedly", slot, offer.manifest.version
                    )
                    state.error = f"unexpected: {exc}"
                    self._set(state, "failed", f"update to {offer.manifest.version} failed: {exc}", "error")
            self.challengers.apply(desired)  # after the slots: a promotion there drops the challenger
            if self._link.connected:
                self._publish_report()

    def _refuse(self, refusal: DesiredRefusal) -> None:
        """Say loudly that a desired state was not acted on; every slot keeps serving what it serves."""
        log.warning("ota: desired state refused (%s): %s", refusal.reason, refusal.message)
        self.refused = refusal
        self._emit_event(
            EventDraft(
                kind="ota_refused",
                level="error",
                message=wire_text(refusal.message, 2000),
                details={"revision": refusal.revision, "reason": refusal.reason, "acted_on": self.revision},
            )
        )
        if self._link.connected:
            self._publish_report()

    def _refresh_health(self) -> None:
        # The rollout engine's health gates keep reading the report after the commit (bake time).
        self._health_at = time.monotonic()
        for state in self.slots.values():
            state.health = state.monitor.health(state.worker.runner.manifest.sha256)
        self._report_due = True

    def _publish_report(self) -> None:
        ok = self._link.publish(self._reported_topic, encode(self.reported()), qos=1, retain=True, timeout=5)
        self._report_due = not ok

    def _set(
        self,
        state: SlotState,
        phase: Phase,
        message: str,
        level: Literal["info", "warning", "error"] = "info",
        **details: int | float | bool,
    ) -> None:
        state.phase = phase
        slot = state.worker.runner.slot
        log.log(
            logging.INFO if level == "info" else logging.WARNING, "ota: slot %s: %s: %s", slot, phase, message
        )
        self._publish_report()
        self._event(state, level, message, **details)

    def _event(
        self,
        state: SlotState,
        level: Literal["info", "warning", "error"],
        message: str,
        **extra: int | float | bool,
    ) -> None:
        target = state.target
        draft = EventDraft(
            kind="ota",
            level=level,
            message=wire_text(message, 2000),  # may quote an exception or a server reply
            details={
                "slot": state.worker.runner.slot,
                "phase": state.phase,
                "revision": self.revision,
                "target_version": target.version if target else None,
                "active_version": state.worker.runner.ref.version,
                **extra,
            },
        )
        # Through the outbox's event stream: a failure reported while the cloud is away arrives later.
        self._emit_event(draft)

    def _pause(self, step: OtaStep, state: SlotState) -> None:
        if self.cfg.test_pause_at != step:
            return
        self._set(state, state.phase, f"paused at {step} (test hook)", "warning")
        self._stop.wait()
        raise _Stopped

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise _Stopped

    # ---- the state machine -------------------------------------------------------------------
    def _apply(self, state: SlotState, offer: ModelOffer, revision: int) -> None:
        m = offer.manifest
        active = state.worker.runner.manifest
        if (m.sha256, m.version) == (active.sha256, active.version):
            return  # already serving it
        if state.store.rejected().get(m.sha256, 0) >= revision:
            return  # failed at this revision already; the report says why
        if self.challengers.promotes(state, offer):
            self.challengers.promote(state, offer, revision)  # installed and shadowed: no download
            return
        state.target = ModelRef(name=m.name, version=m.version, sha256=m.sha256)
        state.error, state.health = None, None
        try:
            check_offer(offer, self.trust, active)
            staged = self._download(state, offer)
            self._set(state, "verifying", f"verifying {m.name} {m.version}")
            self._pause("verifying", state)
            path, slot = write_manifest(staged, m), state.worker.runner.slot
            settings = self._settings.get(slot, NO_SETTINGS)
            runner = load_release(path, slot, self.config.runtime.threads, settings)
            self._set(state, "smoke_testing", f"smoke-testing {m.name} {m.version}")
            self._pause("smoke_testing", state)
            reference_runner = golden_runner(runner, path, settings)
            summary = smoke_test(reference_runner, path)
            log.info("ota: slot %s: smoke test passed: %s", runner.slot, summary)
            figures = golden_set_check(reference_runner, path)
            if figures is not None:
                self._event(state, "info", f"{m.name} {m.version}: {figures.describe()}", **figures.details())
        except (VerifyError, DownloadError) as exc:
            state.error = str(exc)
            if isinstance(exc, VerifyError):
                state.store.discard_staging(m.sha256)  # keep a cut download's bytes for a retry
            state.store.reject(m.sha256, revision)
            details = exc.figures.details() if isinstance(exc, GoldenSetRefused) else {}
            self._set(state, "failed", f"{m.name} {m.version} refused: {exc}", "error", **details)
            return
        self._swap_and_watch(state, staged, m, revision)

    def _download(self, state: SlotState, offer: ModelOffer) -> Path:
        m = offer.manifest
        self._set(state, "downloading", f"downloading {m.name} {m.version} ({m.size_bytes} bytes)")
        staged = state.store.staging(m.sha256)
        cfg = self.cfg

        last = [time.monotonic()]

        def progress(have: int) -> None:
            self._check_stop()
            self._pause("downloading", state)
            if time.monotonic() - last[0] >= PROGRESS_EVERY_S:  # slow links: say it is still moving
                last[0] = time.monotonic()
                self._event(state, "info", f"downloading {m.name} {m.version}: {have} bytes", bytes=have)

        fetch_release(offer, staged, cfg.download_timeout_s, cfg.download_retries, progress)
        return staged

    def _swap_and_watch(self, state: SlotState, staged: Path, m: ModelManifest, revision: int) -> None:
        worker, store, slot = state.worker, state.store, state.worker.runner.slot
        self._set(state, "swapping", f"installing {m.name} {m.version}")
        release = store.install(staged, m.version, m.sha256)
        self._pause("swapping", state)
        new_path = release / f"{m.name}{MANIFEST_SUFFIX}"
        try:
            # From its final home, with the slot's settings: the line keeps its calibration.
            runner = load_release(
                new_path, slot, self.config.runtime.threads, self._settings.get(slot, NO_SETTINGS)
            )
        except VerifyError as exc:  # the disk changed under us: refuse, nothing was swapped yet
            state.error = f"installed copy: {exc}"
            store.reject(m.sha256, revision)
            self._set(state, "failed", f"{m.name} {m.version} refused: {state.error}", "error")
            return
        runner.warm_up()
        pointer = store.read()
        old_path = pointer.active if pointer else str(self._factory[slot])
        old_previous = pointer.previous if pointer else None
        old_revision = pointer.revision if pointer else 0
        old_ref = worker.runner.ref
        baseline = state.monitor.health(old_ref.sha256)
        state.monitor.restart(m.sha256)
        store.write(Pointer(active=str(new_path), previous=old_path, trial=True, revision=revision))
        old_runner = worker.swap_runner(runner)
        state.previous = old_ref
        self._on_swap()
        self._set(state, "health_window", f"serving {m.name} {m.version}; watching its health")
        self._pause("health_window", state)
        started = time.monotonic()
        cfg = self.cfg
        while time.monotonic() - started < cfg.health_window_s:
            self._check_stop()  # a stop here leaves the trial pointer: the next start rolls back
            health = state.monitor.health(m.sha256)
            if (
                cfg.health_window_inferences
                and health.inferences + health.errors >= cfg.health_window_inferences
            ):
                break
            self._stop.wait(0.1)
        state.health = state.monitor.health(m.sha256)
        reason = judge(state.health, baseline, cfg)
        if reason is None:
            self._pause("committing", state)
            store.write(Pointer(active=str(new_path), previous=old_path, trial=False, revision=revision))
            state.target = None
            self._set(
                state, "committed", f"{m.name} {m.version} committed ({state.health.inferences} inferences)"
            )
            self._pause("committed", state)
            store.prune({Path(p).resolve().parent for p in (str(new_path), old_path)})
            return
        worker.swap_runner(old_runner)
        store.write(Pointer(active=old_path, previous=old_previous, trial=False, revision=old_revision))
        store.reject(m.sha256, revision)
        state.previous = ref_of(Path(old_previous)) if old_previous else None
        state.error = f"health window: {reason}"
        self._on_swap()
        self._set(state, "rolled_back", f"{m.name} {m.version} rolled back: {reason}", "error")
