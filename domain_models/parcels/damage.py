"""The damage step of the parcel release: crops -> train -> ONNX -> cut-off -> per-parcel figures -> INT8.

Runs after the detector is trained: calibration and test crops are cut along the detector's own
boxes, as the runner cuts them. Returns everything the release, the card and the manifests need.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from domain_models.parcels.damage_data import (
    calibration_lines,
    detected_crops,
    digest,
    heldout_lines,
    train_lines,
    truth_crops,
)
from domain_models.parcels.damage_eval import (
    DamageGate,
    choose_cut,
    crop_scores,
    figures,
    per_parcel,
    quantize,
    ships_on,
)
from domain_models.parcels.damage_train import DamageSettings, export_damage_onnx, fit
from edge_agent.runtime.parcels import ParcelRunner
from protocol.inference import DAMAGE_PREFIX

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DamageRelease:
    """The classifier files, its cut-off, measured figures and whether the flag ships ON."""

    fp32: Path
    int8: Path | None  # None when the INT8 gate refused it
    cut: float
    measured: dict[str, dict[str, float]]  # "FP32 seen", "FP32 unseen", "INT8 seen", ...
    gate: DamageGate
    on: bool
    meta: dict[str, object]


def build(out: Path, detector_manifest: Path, settings: DamageSettings, version: str,
          tolerance_points: float = 1.0) -> DamageRelease:  # fmt: skip
    """Train, export, calibrate, measure and quantize the classifier into ``out``."""
    started = time.perf_counter()
    lines = train_lines(settings.seed, settings.lines)
    train = truth_crops(lines, settings.frames, settings.seed, settings.repeats)
    log.info("damage: %d training crops (%d damaged) in %.0f s", len(train), int(train.labels.sum()),
             time.perf_counter() - started)  # fmt: skip
    # One thread: on a shared, loaded 2-core machine two threads spin-wait and run ~10x slower.
    torch.set_num_threads(1)
    net, train_s = fit(train, settings)
    fp32 = out / f"{DAMAGE_PREFIX}-{version}.onnx"
    export_damage_onnx(net, fp32)
    runner = ParcelRunner(detector_manifest, "damage-crops")
    calib = detected_crops(runner, calibration_lines(settings.seed, settings.calibration_lines),
                           settings.eval_frames)  # fmt: skip
    tests = {
        cond: detected_crops(
            runner, heldout_lines(settings.seed, settings.test_lines, cond == "unseen"), settings.eval_frames
        )  # fmt: skip
        for cond in ("seen", "unseen")
    }
    cut = choose_cut(*per_parcel(crop_scores(fp32, calib), calib))
    gated = quantize(
        fp32, out / f"{DAMAGE_PREFIX}-{version}.int8.onnx", calib, tests["seen"], tolerance_points
    )
    measured: dict[str, dict[str, float]] = {}
    for label, model in (("FP32", fp32), ("INT8", gated.int8)):
        if model is None:
            continue
        measured[f"{label} calibration"] = figures(*per_parcel(crop_scores(model, calib), calib), cut)
        for cond, crops in tests.items():
            measured[f"{label} {cond}"] = figures(*per_parcel(crop_scores(model, crops), crops), cut)
    on = ships_on({k: v for k, v in measured.items() if k.startswith("FP32 ") and "calibration" not in k})
    log.info("damage: cut-off %.4f, flag %s: %s", cut, "ON" if on else "OFF", json.dumps(measured))
    meta: dict[str, object] = {
        "seed": settings.seed, "lines": settings.lines, "frames": settings.frames, "steps": settings.steps,
        "batch": settings.batch, "width": settings.width, "repeats": settings.repeats, "train_crops": len(train),
        "train_damaged": int(train.labels.sum()), "train_s": round(train_s, 1),
        "params": sum(p.numel() for p in net.parameters()), "data_sha256": digest(settings.seed, settings.lines, settings.frames),
        "calibration_lines": settings.calibration_lines, "test_lines": settings.test_lines,
        "eval_frames": settings.eval_frames,
    }  # fmt: skip
    return DamageRelease(fp32, gated.int8, cut, measured, gated, on, meta)
