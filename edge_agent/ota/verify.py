"""The checks a release passes before it may serve: signature, version, hashes, runtime, golden sample."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from edge_agent.frames import Frame
from edge_agent.runtime import Runner, build_runner
from edge_agent.runtime.golden import GoldenFigures, GoldenSetError, check_golden_set
from edge_agent.runtime.registry import NO_SETTINGS, SlotSettings
from protocol.manifest import MANIFEST_SUFFIX, TEXT_TASKS, ManifestError, ModelManifest, load_manifest
from protocol.messages import utcnow, version_key
from protocol.ota import ModelOffer
from protocol.signing import SignatureError, TrustStore

log = logging.getLogger(__name__)


class VerifyError(RuntimeError):
    """A release that must not be installed; the message says which check failed and why."""


def check_offer(offer: ModelOffer, trust: TrustStore, installed: ModelManifest | None) -> None:
    """Signature by a trusted, unrevoked key, and a version newer than ``installed`` (anti-rollback).

    Cheap, so it runs before the download too: an untrusted offer costs no bandwidth.
    """
    manifest = offer.manifest
    try:
        trust.verify(manifest, offer.signature)
    except SignatureError as exc:
        raise VerifyError(f"signature: {exc}") from None
    if installed is None:
        return
    new, old = version_key(manifest.version), version_key(installed.version)
    if new <= old and not offer.allow_downgrade:
        raise VerifyError(
            f"anti-rollback: version {manifest.version} is not newer than the installed "
            f"{installed.version} (an explicit rollback sets allow_downgrade)"
        )
    if new == old and manifest.sha256 != installed.sha256:
        raise VerifyError(
            f"version {manifest.version} is installed with different bytes; versions are immutable"
        )


def write_manifest(folder: Path, manifest: ModelManifest) -> Path:
    """Write the signed manifest beside its downloaded files."""
    path = folder / f"{manifest.name}{MANIFEST_SUFFIX}"
    path.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    return path


def load_release(
    manifest_path: Path, slot: str, threads: int, settings: SlotSettings = NO_SETTINGS
) -> Runner:
    """Hashes of the artifact and every file, then a load by the runtime (manifest/model compatibility).

    ``settings`` are the slot's from the gateway config, so a release that will serve is loaded
    exactly as the slot's first model was (a parcel line keeps its calibration and sort table), and
    a release they do not fit (a parcels section, a model of another task) is refused here.
    """
    try:
        load_manifest(manifest_path, verify_artifact=True)
        runner = build_runner(manifest_path, slot, threads, settings)
    except (ManifestError, RuntimeError, OSError) as exc:  # ModelLoadError is a RuntimeError
        raise VerifyError(str(exc)) from None
    return runner


def golden_runner(runner: Runner, manifest_path: Path, settings: SlotSettings) -> Runner:
    """The runner that judges the golden sample: the release as signed, without the slot's settings.

    The golden label and scores were recorded with the release's own calibration and sort table;
    a line's overrides (its own lanes) would fail a sound model. That the slot's settings fit the
    release was proven when ``runner`` was loaded with them. A release that leaves the line's
    values to the config (no calibration of its own) is judged with them.
    """
    if settings == NO_SETTINGS:
        return runner
    try:
        return load_release(manifest_path, runner.slot, threads=1)  # one golden frame
    except VerifyError as exc:
        log.info("golden sample of %s judged with the slot's settings: %s", manifest_path.name, exc)
        return runner


def smoke_test(runner: Runner, manifest_path: Path) -> str:
    """Run the manifest's golden input and compare label and scores; return a one-line summary.

    Without a golden sample the release is only warmed up (a model that loads and runs).
    """
    manifest = runner.manifest
    try:
        runner.warm_up()
    except Exception as exc:  # noqa: BLE001 - any failure of a new model is a refusal, not a crash
        raise VerifyError(f"smoke test: warm-up failed: {exc}") from None
    golden = manifest.golden
    if golden is None:
        log.warning(
            "%s %s has no golden sample; smoke test is load + warm-up only", manifest.name, manifest.version
        )
        return "no golden sample: load and warm-up passed"
    if golden.input not in manifest.files:
        raise VerifyError(f"smoke test: golden input {golden.input!r} is not listed (and hashed) in files")
    path = manifest_path.parent / golden.input
    if manifest.task in TEXT_TASKS:
        frame = Frame("ota-golden", golden.input, utcnow(), np.empty((0,), np.uint8), path.read_text("utf-8"))
    else:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise VerifyError(f"smoke test: golden input {golden.input} is not a readable image")
        frame = Frame("ota-golden", golden.input, utcnow(), np.asarray(image, dtype=np.uint8))
    try:
        predictions = runner.infer([frame])
    except Exception as exc:  # noqa: BLE001 - as above
        raise VerifyError(f"smoke test: inference on {golden.input} failed: {exc}") from None
    if len(predictions) != 1:
        raise VerifyError(f"smoke test: {len(predictions)} outputs for one golden input")
    output = predictions[0].output
    if output.label != golden.expected_label:
        raise VerifyError(f"smoke test: label {output.label!r}, golden expects {golden.expected_label!r}")
    scores = dict(getattr(output, "scores", {}) or {})
    scores.setdefault(output.label, output.score)
    for label, expected in golden.expected_scores.items():
        got = scores.get(label)
        if got is None or abs(got - expected) > golden.tolerance:
            raise VerifyError(
                f"smoke test: score of {label!r} is {got}, golden expects {expected} +- {golden.tolerance}"
            )
    return f"golden {golden.input}: {output.label} ({output.score:.3f})"


def golden_set_check(runner: Runner, manifest_path: Path) -> GoldenFigures | None:
    """The release's golden set on this gateway's CPU; refuses a build that computes differently.

    A model can pass its one golden sample and still score every part a little wrong on this CPU
    (INT8 kernels differ between x86 CPUs with and without VNNI). The golden set's scores must
    rank as the reference build's did and its decisive labels must hold, within the tolerances the
    signed manifest states. Returns None for a release without a golden set.
    """
    if runner.manifest.golden_set is None:
        return None
    try:
        figures = check_golden_set(runner, manifest_path)
    except (GoldenSetError, RuntimeError, ValueError) as exc:  # a runner raises RuntimeError subclasses
        raise VerifyError(f"golden set: {exc}") from None
    if not figures.passed:
        raise GoldenSetRefused(figures)
    return figures


class GoldenSetRefused(VerifyError):
    """A release whose golden set disagrees with its reference on this CPU; carries the figures."""

    def __init__(self, figures: GoldenFigures) -> None:
        super().__init__(f"golden set on this CPU: {figures.describe()}")
        self.figures = figures
