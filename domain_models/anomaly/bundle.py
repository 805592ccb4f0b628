"""Build the bundled anomaly model and its card with one command:

    nice -n 10 python -m domain_models.anomaly.bundle --out domain_models/anomaly/artifacts --seed 11

Renders simulator MVTec folders (seen line; unseen belt + light), trains, compares heads,
evaluates FP32 on both, quantizes behind the gate, measures latency and writes MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from domain_models.anomaly.card import write_card
from domain_models.anomaly.compare import compare_heads
from domain_models.anomaly.data import open_mvtec
from domain_models.anomaly.evaluate import AnomalyReport, evaluate_onnx, format_report
from domain_models.anomaly.quantize import quantize_model
from domain_models.anomaly.train import TrainConfig, train
from protocol.manifest import artifact_path, load_manifest
from simulators.camera_line import CameraLineConfig
from simulators.mvtec import TEST_SEED_OFFSET, write_mvtec

log = logging.getLogger(__name__)

COMMAND = "nice -n 10 .venv/bin/python -m domain_models.anomaly.bundle --out domain_models/anomaly/artifacts --seed {seed}"


def build(out: Path, seed: int, work: Path, train_good: int = 120) -> int:
    """Render data under ``work``, build the release into ``out``; returns the exit code."""
    line = CameraLineConfig(seed=seed)
    seen, unseen, unseen_fit = work / "seen", work / "unseen", work / "unseen-fit"
    test_cfg = replace(line, seed=seed + TEST_SEED_OFFSET)
    write_mvtec(seen, line, train_good, 60, 20, test_cfg)
    write_mvtec(unseen, line, 0, 60, 20, test_cfg.unseen_appearance())
    # The few-shot answer to a new belt/light: re-fit on good images of it (other seed, same look).
    write_mvtec(unseen_fit, line.unseen_appearance(), train_good, 0, 0)
    shutil.copytree(unseen / "test", unseen_fit / "test")
    shutil.copytree(unseen / "ground_truth", unseen_fit / "ground_truth")

    out.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(data=seen, out=out, seed=seed)
    manifest_path, seen_report = train(cfg)
    manifest = load_manifest(manifest_path)
    spec = manifest.preprocessing
    if seen_report is None or spec is None:
        raise RuntimeError("bundle: the seen folder has test images; expected an evaluation")
    threshold = manifest.thresholds["defect"]
    fp32 = artifact_path(manifest_path, manifest)
    reports: dict[str, AnomalyReport] = {
        "seen line (test seed)": seen_report,
        "unseen belt + light": evaluate_onnx(fp32, spec, threshold, open_mvtec(unseen, min_train=0)),
    }
    with tempfile.TemporaryDirectory() as refit_dir:
        _, refit = train(
            cfg.model_copy(update={"data": unseen_fit, "out": Path(refit_dir), "name": "defect-refit"})
        )
        if refit is not None:
            reports["unseen, re-fit on its good images"] = refit

    folder = open_mvtec(seen)
    order = np.random.default_rng(seed).permutation(len(folder.train))
    fit = [folder.train[i] for i in order[round(cfg.holdout * len(order)) :]]
    heads = compare_heads(folder, fit, spec.resize, cfg.coreset, seed)

    result = quantize_model(manifest_path, seen, tolerance=1.0, out=out, latency_threads=(1, 2))
    reports["INT8 (own threshold), seen line" + ("" if result.manifest else ", refused")] = result.int8
    latency = [list(row) for row in result.latency]

    facts: dict[str, object] = {
        "train (fit + threshold)": f"{len(folder.train)} good frames, simulator seed {seed}, 640x480",
        "held out for threshold": f"{round(cfg.holdout * len(folder.train))} good frames, target FRR {cfg.frr:.0%}",
        "test": f"seed {seed + TEST_SEED_OFFSET}: 60 good + 4 types x 20 defects, exact masks",
        "unseen set": "same test parts under CameraLineConfig.unseen_appearance() (mesh belt, warm light)",
        "input": f"{spec.resize[0]}x{spec.resize[1]} RGB, map {spec.resize[0] // 8}x{spec.resize[1] // 8}",
        "threshold (raw)": f"{threshold:.4f}",
        "FP32 artifact": f"{fp32.name}, {fp32.stat().st_size / 1e6:.2f} MB, sha256 {manifest.sha256[:16]}...",
    }
    unseen_auroc = reports["unseen belt + light"].image_auroc
    n_hold = round(cfg.holdout * len(folder.train))
    weaknesses = [
        f"A new belt or light is a new 'normal': the seen-line model scores {unseen_auroc:.2f} image AUROC "
        "on the unseen appearance. Re-fit on ~100 good images of the new look (seconds; row above).",
        "Thin, low-contrast scratches and cracks are the hardest types (see per-type recall).",
        "The threshold rests on a few dozen held-out good images: the realised false-reject rate on "
        "test parts can be several times the target; re-calibrate with more good images in production.",
        "Simulator data only: no real MVTec AD category was available offline to measure against.",
    ]
    if result.manifest is None:
        failed = "; ".join(g.describe() for g in result.gates if not g.passed)
        weaknesses.append(
            f"INT8 is refused by the gate ({failed}). The backbone quantizes well (image AUROC stays "
            "close); the loss is at the operating point: the INT8 threshold is re-calibrated on the same "
            f"{n_hold} held-out good images, and a threshold set from so few images moves by more than the "
            "quantization does. FP32 ships; more held-out good images would let INT8 pass on merit."
        )
    write_card(
        out / "MODEL_CARD.md",
        facts=facts,
        reports=reports,
        heads=heads,
        gates=result.gates,
        int8_written=result.manifest is not None,
        latency=latency,
        command=COMMAND.format(seed=seed),
        weaknesses=weaknesses,
    )
    for name, report in reports.items():
        sys.stdout.write(format_report(report, name))
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI of the bundle build."""
    parser = argparse.ArgumentParser(
        prog="python -m domain_models.anomaly.bundle", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="Artifact folder")
    parser.add_argument("--seed", type=int, default=11, help="Simulator line seed (test seed = seed + 1000)")
    parser.add_argument("--work", type=Path, default=None, help="Keep the rendered data here (default: temp)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.work is not None:
        return build(args.out, args.seed, args.work)
    with tempfile.TemporaryDirectory() as work:
        return build(args.out, args.seed, Path(work))


if __name__ == "__main__":
    raise SystemExit(main())
