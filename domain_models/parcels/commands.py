"""``factory-models {train|evaluate|export|quantize|calibrate} parcels``: the parcel detector's pipeline.

``train`` is the one reproducible command: render data, train, export FP32, evaluate on held-out
sequences (seen and unseen settings), quantize to INT8 behind the gate, evaluate INT8, and write
manifests with metrics, ``*.eval.json`` and MODEL_CARD.md into ``--out``. ``calibrate`` measures
a line's ``mm_per_px`` with the shipped detector on frames of a reference box (``scale.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from domain_models.common import PipelineError, check_manifest_matches_onnx, latency_rows
from protocol.inference import DAMAGE_INPUT, DAMAGE_PREFIX, DAMAGE_THRESHOLD
from protocol.manifest import MANIFEST_SUFFIX, ManifestError, ModelManifest, artifact_path, load_manifest

if TYPE_CHECKING:  # torch-free at import: the CLI lists commands without loading it
    from domain_models.parcels.damage import DamageRelease

log = logging.getLogger(__name__)

ARTIFACTS = Path(__file__).parent / "artifacts"
SHIPPED = ARTIFACTS / "parcel-detector-1.1.0.manifest.json"
EXIT_BAD_INPUT = 2


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Options of one command (the CLI adds ``-v``)."""
    if command == "calibrate":
        parser.add_argument(
            "--data",
            type=Path,
            required=True,
            help="Frames of the reference box: an exported capture or any image folder",
        )
        parser.add_argument(
            "--box-mm",
            type=float,
            nargs=2,
            required=True,
            metavar=("L", "W"),
            help="The reference box's top, length and width in mm",
        )
        parser.add_argument("--model", type=Path, default=SHIPPED, help="The parcels release the line runs")
        return  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="Seed of data, training and evaluation lines")
    if command == "train":
        parser.add_argument("--out", type=Path, default=ARTIFACTS, help="Folder for the release files")
        parser.add_argument("--tiny", action="store_true", help="CI-sized data and training (~30 s)")
        parser.add_argument("--version", default="1.1.0", help="Model version (MAJOR[.MINOR[.PATCH]])")
    if command in ("train", "quantize"):
        parser.add_argument("--tolerance", type=float, default=1.0, help="Largest INT8 drop, IoU points")
    if command in ("evaluate", "quantize", "export"):
        parser.add_argument("--model", type=Path, required=True, help="A parcels *.manifest.json")
    if command in ("train", "evaluate"):
        parser.add_argument("--sequences", type=int, default=4, help="Held-out sequences per condition")
        parser.add_argument("--frames", type=int, default=120, help="Frames per sequence")
    if command == "evaluate":
        parser.add_argument("--unseen", action="store_true", help="Only the unseen belt/light/sizes")
        parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
        parser.add_argument(
            "--data", type=Path, default=None, help="Unused: parcels evaluate on the simulator"
        )
    if command == "export":
        parser.add_argument("--out", type=Path, required=True, help="Folder to copy the release into")


def _finite(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}{k}": round(v, 4) for k, v in metrics.items() if math.isfinite(v)}


def _set_metrics(manifest_path: Path, metrics: dict[str, float]) -> None:
    m = ModelManifest.model_validate_json(manifest_path.read_bytes())
    manifest_path.write_text(m.model_copy(update={"metrics": metrics}).model_dump_json(indent=2) + "\n")


def release(
    out: Path, seed: int, tiny: bool, version: str, tolerance: float, sequences: int, frames: int
) -> dict[str, object]:
    """The whole pipeline into ``out``; returns the figures it wrote."""
    import numpy as np
    import torch

    from domain_models.parcels.card import write_card
    from domain_models.parcels.damage import build
    from domain_models.parcels.damage_train import DamageSettings
    from domain_models.parcels.data import PREPROCESSING
    from domain_models.parcels.evaluate import evaluate
    from domain_models.parcels.quantize import quantize
    from domain_models.parcels.train import NAME, TrainSettings, train, write_release

    settings = TrainSettings.tiny(seed) if tiny else TrainSettings(seed=seed)
    fp32_manifest, net = train(out, settings, version)
    fp32 = artifact_path(fp32_manifest, load_manifest(fp32_manifest))
    data_sha = load_manifest(fp32_manifest).lineage.data_sha256 or "0" * 64  # type: ignore[union-attr]
    damage = build(
        out,
        fp32_manifest,
        DamageSettings.tiny(seed) if tiny else DamageSettings(seed=seed),
        version,
        tolerance,
    )
    thresholds = dict(load_manifest(fp32_manifest).thresholds)  # calibrated on FP32, shared
    fp32_extra, int8_extra = _damage_files(damage, thresholds)
    fp32_manifest = write_release(fp32, out, NAME, version, {}, data_sha, seed, thresholds, fp32_extra)
    int8 = out / f"{NAME}-{version}.int8.onnx"
    gate_result = quantize(fp32, int8, seed, tolerance)
    int8_manifest = write_release(
        int8, out, f"{NAME}-int8", version, {}, data_sha, seed, thresholds, int8_extra
    )
    evals: dict[str, dict[str, float]] = {}
    for label, manifest in (("FP32", fp32_manifest), ("INT8", int8_manifest)):
        for unseen in (False, True):
            measured = evaluate(manifest, seed, sequences, frames, unseen)
            measured["frames_per_sequence"] = float(frames)
            evals[f"{label} {'unseen' if unseen else 'seen'}"] = measured
    for label, manifest in (("FP32", fp32_manifest), ("INT8", int8_manifest)):
        metrics = {**_finite(evals[f"{label} seen"], ""), **_finite(evals[f"{label} unseen"], "unseen_")}
        metrics[f"gate_parcel_iou_{label.lower()}"] = round(
            gate_result.fp32 if label == "FP32" else gate_result.int8, 4
        )
        crop = damage.measured.get(f"{label} seen", damage.measured["FP32 seen"])
        crop_unseen = damage.measured.get(f"{label} unseen", damage.measured["FP32 unseen"])
        metrics |= _finite(crop, "damage_crop_") | _finite(crop_unseen, "unseen_damage_crop_")
        _set_metrics(manifest, metrics)
    width, height = PREPROCESSING.resize
    feeds = {"image": np.random.default_rng(seed).random((1, 3, height, width), dtype=np.float32)}
    latency = latency_rows({"FP32": fp32, "INT8": int8}, feeds)
    crop_feeds = {DAMAGE_INPUT: np.random.default_rng(seed).random((1, 3, 64, 96), dtype=np.float32)}
    crop_models = {"damage FP32": damage.fp32, **({"damage INT8": damage.int8} if damage.int8 else {})}
    latency += latency_rows(crop_models, crop_feeds)
    meta = json.loads((out / f"{NAME}-{version}.train.json").read_text())
    params = sum(p.numel() for p in net.parameters())
    torch.set_num_threads(2)
    thresholds = dict(load_manifest(fp32_manifest).thresholds)
    write_card(out / "MODEL_CARD.md", evals, gate_result, latency, meta, params, thresholds, damage)
    if not damage.on:  # not shipped: the files would only mislead (the card keeps the figures)
        for path in (damage.fp32, damage.int8):
            if path is not None:
                path.unlink(missing_ok=True)
    figures: dict[str, object] = {
        "evaluations": evals,
        "gate": gate_result.describe(),
        "latency": latency,
        "train": meta,
        "damage_crop": {
            "cut": damage.cut, "on": damage.on, "measured": damage.measured,
            "gate": damage.gate.result.describe(), "train": damage.meta,
        },
    }  # fmt: skip
    (out / f"{NAME}-{version}.eval.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def _damage_files(damage: DamageRelease, thresholds: dict[str, float]) -> tuple[list[Path], list[Path]]:
    """The classifier files of the FP32 and INT8 releases (none when the flag stays off), and the
    cut-off added to ``thresholds``; an INT8 release whose INT8 classifier was refused ships FP32's."""
    if not damage.on:
        log.warning("damage crop classifier not shipped: not clearly useful on held-out parcels")
        return [], []
    thresholds[DAMAGE_THRESHOLD] = damage.cut
    return [damage.fp32], [damage.int8 or damage.fp32]


def run(command: str, args: argparse.Namespace) -> int:
    """Run one command; errors a user can fix are printed in one line and return 1."""
    if command == "calibrate":
        return _calibrate(args)
    try:
        if command == "train":
            figures = release(
                args.out, args.seed, args.tiny, args.version, args.tolerance, args.sequences, args.frames
            )
            sys.stdout.write(
                json.dumps(figures["evaluations"], indent=2) + "\n" + str(figures["gate"]) + "\n"
            )
        elif command == "evaluate":
            from domain_models.parcels.evaluate import evaluate

            conditions = (True,) if args.unseen else (False, True)
            result = {("unseen" if u else "seen"): evaluate(args.model, args.seed, args.sequences, args.frames, u, args.threads)
                      for u in conditions}  # fmt: skip
            sys.stdout.write(json.dumps(result, indent=2) + "\n")
        elif command == "quantize":
            from domain_models.parcels.quantize import quantize
            from domain_models.parcels.train import write_release

            manifest = load_manifest(args.model)
            fp32 = artifact_path(args.model, manifest)
            int8 = fp32.with_suffix(".int8.onnx")
            gated = quantize(fp32, int8, args.seed, args.tolerance)
            data_sha = manifest.lineage.data_sha256 if manifest.lineage else None
            write_release(
                int8,
                fp32.parent,
                f"{manifest.name}-int8",
                manifest.version,
                {},
                data_sha or "0" * 64,
                args.seed,
                dict(manifest.thresholds),
                # The detector alone is re-quantized here; the release's crop classifier goes along.
                [fp32.parent / n for n in manifest.files if n.startswith(DAMAGE_PREFIX)],
            )
            sys.stdout.write(gated.describe() + "\n")
        elif command == "export":
            manifest = load_manifest(args.model)
            check_manifest_matches_onnx(args.model, manifest)
            args.out.mkdir(parents=True, exist_ok=True)
            for name in [manifest.artifact, *manifest.files]:
                shutil.copy2(args.model.parent / name, args.out / name)
            shutil.copy2(args.model, args.out / f"{manifest.name}-{manifest.version}{MANIFEST_SUFFIX}")
            sys.stdout.write(f"exported {manifest.name} {manifest.version} to {args.out}\n")
        else:
            sys.stderr.write(f"factory-models: parcels has no command {command!r}\n")
            return 2
    except (PipelineError, ManifestError) as exc:
        sys.stderr.write(f"factory-models {command} parcels: {exc}\n")
        return 1
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    """Print the measured mm_per_px and how to apply it; bad input is one line and exit 2."""
    from domain_models.parcels.scale import ScaleError, estimate, image_files, read_images
    from edge_agent.runtime.model import ModelLoadError
    from edge_agent.runtime.parcels import ParcelRunner

    try:
        paths = image_files(args.data)
        runner = ParcelRunner(args.model, "calibrate")
        measured = estimate(runner, read_images(paths), (args.box_mm[0], args.box_mm[1]))
    except (ScaleError, ModelLoadError, ManifestError) as exc:
        sys.stderr.write(f"factory-models calibrate parcels: {exc}\n")
        return EXIT_BAD_INPUT
    value = f"{measured.mm_per_px:.4f}"
    sys.stdout.write(
        measured.describe()
        + f"  (at the release's own {runner.mm_per_px:g} mm/px this {max(args.box_mm):g} mm box "
        f"measures {max(args.box_mm) * runner.mm_per_px / measured.mm_per_px:.0f} mm)\n"
        + "apply: in the gateway's config, the parcel slot's entry under models:\n"
        + f"    parcels:\n      mm_per_px: {value}\n"
        + "then restart edge-agent (its log says 'mm_per_px "
        + value
        + " (config)')\n"
    )
    return 0
