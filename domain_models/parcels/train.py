"""Train the parcel detector on simulator frames and export it as ONNX with its manifest."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812 - the usual name

from domain_models.common import PipelineError, artifact_fields
from domain_models.parcels.calibrate import calibrate
from domain_models.parcels.data import PREPROCESSING, Dataset, build, eval_config
from domain_models.parcels.model import ParcelNet
from domain_models.torch_training import OneCycleAdamW, colour_jitter, export_onnx
from edge_agent.runtime.parcel_routes import RouteRule, RouteTable
from protocol.inference import (
    BIRTH_WINDOW_KEY,
    COUNT_LINE_X_KEY,
    DAMAGE_MAP_KEY,
    LENGTH_OFFSET_KEY,
    MIN_AREA_KEY,
    MM_PER_PX_KEY,
    PARCEL_KEY,
    ROUTES_FILE,
    WIDTH_OFFSET_KEY,
)
from protocol.manifest import MANIFEST_SUFFIX, GoldenSample, Lineage, ModelManifest, sha256_file
from protocol.messages import utcnow
from simulators.parcel_line import ParcelLine

log = logging.getLogger(__name__)

NAME = "parcel-detector"
# mm_per_px and the counting line are the simulated camera's; a real line sets its own (see card).
THRESHOLDS: dict[str, float] = {
    MM_PER_PX_KEY: 1.25,
    COUNT_LINE_X_KEY: 0.5,
    PARCEL_KEY: 0.5,
    DAMAGE_MAP_KEY: 0.5,
    LENGTH_OFFSET_KEY: 0.0,
    WIDTH_OFFSET_KEY: 0.0,
    MIN_AREA_KEY: 600.0,  # model pixels: a quarter of the smallest box; rail glints are smaller
    BIRTH_WINDOW_KEY: 0.05,
}
# The default sort table: damaged boxes to rework, unread labels to manual, oversize to its own
# lane, then by the barcode's leading lane digit ("1..." / "PX1-..." -> lane_1, and so on).
ROUTES = RouteTable(
    rules=(
        RouteRule(lane="reject", damaged=True),
        RouteRule(lane="manual", has_barcode=False),
        RouteRule(lane="oversize", min_length_mm=480.0),
        RouteRule(lane="lane_1", prefixes=("1", "PX1")),
        RouteRule(lane="lane_2", prefixes=("2", "PX2")),
        RouteRule(lane="lane_3", prefixes=("3", "PX3")),
    ),
    default="manual",
)
LANES = ("lane_1", "lane_2", "lane_3", "oversize", "manual", "reject")


@dataclass(frozen=True)
class TrainSettings:
    """How much data and how long: the defaults make the bundled model, ``tiny`` the CI one."""

    seed: int = 0
    lines: int = 24
    frames_per_line: int = 12
    steps: int = 900
    batch: int = 6
    crop: tuple[int, int] = (
        256,
        144,
    )  # (width, height) at model scale: whole frames (crops lost the rails' context)
    lr: float = 8e-3
    width: int = 16

    @classmethod
    def tiny(cls, seed: int = 0) -> TrainSettings:
        """Small enough for CI on a loaded 2-core machine (~40 s). Whole frames, not crops: with
        few steps the context (rails, belt edges) matters more than the number of samples."""
        return cls(
            seed=seed, lines=6, frames_per_line=8, steps=180, batch=4, crop=(256, 144), lr=1e-2, width=8
        )


def _batch(data: Dataset, settings: TrainSettings, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crops of random frames, with colour jitter (per-channel gain, channel swaps) so belts
    and lights the model never saw are less of a surprise."""
    cw, ch = settings.crop
    n, _, h, w = data.images.shape
    idx = torch.randint(n, (settings.batch,), generator=gen).tolist()
    xs = torch.randint(w - cw + 1, (settings.batch,), generator=gen).tolist()
    ys = torch.randint(h - ch + 1, (settings.batch,), generator=gen).tolist()
    x = torch.stack(
        [
            torch.from_numpy(data.images[i, :, y : y + ch, x0 : x0 + cw])
            for i, x0, y in zip(idx, xs, ys, strict=True)
        ]
    )
    t = torch.stack(
        [
            torch.from_numpy(data.targets[i, :, y : y + ch, x0 : x0 + cw])
            for i, x0, y in zip(idx, xs, ys, strict=True)
        ]
    )
    return colour_jitter(x, gen, 0.6, 0.8), t


def fit(data: Dataset, settings: TrainSettings) -> ParcelNet:
    """Train on ``data``: BCE + soft Dice on the parcel map, weighted BCE on the damage map."""
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    net = ParcelNet(settings.width)
    optimiser = OneCycleAdamW(net, settings.lr, settings.steps)
    pos_weight = torch.tensor([1.0, 6.0]).view(1, 2, 1, 1)  # damage pixels are rare
    net.train()
    started, total = time.perf_counter(), 0.0
    for step in range(1, settings.steps + 1):
        x, y = _batch(data, settings, gen)
        logits = F.interpolate(net.logits(x), size=y.shape[-2:], mode="bilinear", align_corners=False)
        bce = F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)
        p = torch.sigmoid(logits[:, 0])
        dice = 1 - (2 * (p * y[:, 0]).sum() + 1) / (p.sum() + y[:, 0].sum() + 1)
        total += optimiser.step(bce + dice)
        if step % 50 == 0 or step == settings.steps:
            log.info(
                "step %d/%d loss %.4f (%.0f s)",
                step,
                settings.steps,
                total / 50,
                time.perf_counter() - started,
            )
            total = 0.0
    return net.eval()


def export_detector_onnx(net: ParcelNet, path: Path) -> None:
    """Dynamic batch, opset 17, at the model's input size."""
    width, height = PREPROCESSING.resize
    export_onnx(net, torch.zeros(1, 3, height, width), path, "image", ["maps"])


def golden_frame(seed: int) -> tuple[np.ndarray, int]:
    """A frame of an evaluation line with a parcel just past the counting line, and its index."""
    line = ParcelLine(eval_config(seed, 0, unseen=False))
    width = line.config.width
    for index in range(400):
        frame = line.frame(index)
        for p in frame.truth.parcels:
            x = p.center[0] - THRESHOLDS[COUNT_LINE_X_KEY] * width
            if 4 <= x < THRESHOLDS[BIRTH_WINDOW_KEY] * width - 8 and p.damage == "none":
                return frame.image, index
    raise PipelineError("golden: no evaluation frame has a parcel just past the counting line")


def write_release(
    onnx_path: Path,
    out: Path,
    name: str,
    version: str,
    metrics: dict[str, float],
    data_sha256: str,
    seed: int,
    thresholds: dict[str, float] | None = None,
    extra_files: Sequence[Path] = (),
) -> Path:
    """Write routes, golden image and the manifest beside ``onnx_path``; return the manifest path.

    ``extra_files`` (already in ``out``, e.g. the damage crop classifier) are listed with their hashes.

    The golden expectation is what the exported model itself says on the golden frame.
    """
    from edge_agent.frames import Frame
    from edge_agent.runtime.parcels import ParcelRunner  # the deployed code path computes it

    routes = out / ROUTES_FILE
    routes.write_text(ROUTES.model_dump_json(indent=2) + "\n")
    golden_name = f"{NAME}-golden.png"
    image, _ = golden_frame(seed)
    cv2.imwrite(str(out / golden_name), image)
    files = {ROUTES_FILE: sha256_file(routes), golden_name: sha256_file(out / golden_name)}
    files.update({p.name: sha256_file(p) for p in extra_files})

    def manifest(golden: GoldenSample | None) -> ModelManifest:
        return ModelManifest(
            **artifact_fields(onnx_path), name=name, version=version, task="parcels",
            description="Parcel finder (tiny U-Net: parcel + damage maps) for a top camera over a conveyor"
            + ("; damage from a crop classifier" if extra_files else ""),
            files=files, preprocessing=PREPROCESSING, golden=golden,
            lineage=Lineage(data_sha256=data_sha256), labels=LANES, thresholds=thresholds or THRESHOLDS,
            metrics=metrics, created_at=utcnow(),
        )  # fmt: skip

    path = out / f"{name}-{version}{MANIFEST_SUFFIX}"
    path.write_text(manifest(None).model_dump_json(indent=2) + "\n")
    runner = ParcelRunner(path, "golden")
    preds = runner.infer([Frame("golden", golden_name, utcnow(), image)])
    if len(preds) != 1:
        raise PipelineError(f"golden: the model gives {len(preds)} parcels on the golden frame, expected 1")
    label, score = preds[0].output.label, preds[0].output.score
    golden = GoldenSample(
        input=golden_name, expected_label=label, expected_scores={label: score}, tolerance=0.05
    )
    path.write_text(manifest(golden).model_dump_json(indent=2) + "\n")
    log.info("wrote %s (golden: %s %.3f)", path, label, score)
    return path


def train(out: Path, settings: TrainSettings, version: str = "1.0.0") -> tuple[Path, ParcelNet]:
    """Build data, fit, export FP32 ONNX and its manifest into ``out``; return (manifest, net)."""
    out.mkdir(parents=True, exist_ok=True)
    # One thread: on a shared, loaded 2-core machine two threads spin-wait and run several times slower.
    torch.set_num_threads(1)
    started = time.perf_counter()
    data = build(settings.seed, settings.lines, settings.frames_per_line)
    log.info("rendered %d training frames in %.1f s", len(data.images), time.perf_counter() - started)
    net = fit(data, settings)
    onnx_path = out / f"{NAME}-{version}.onnx"
    export_detector_onnx(net, onnx_path)
    meta = {"seed": settings.seed, "lines": settings.lines, "frames_per_line": settings.frames_per_line,
            "steps": settings.steps, "batch": settings.batch, "width": settings.width, "train_s": round(time.perf_counter() - started, 1)}  # fmt: skip
    (out / f"{NAME}-{version}.train.json").write_text(json.dumps(meta, indent=2) + "\n")
    draft = write_release(onnx_path, out, NAME, version, {}, data.digest, settings.seed)
    thresholds = calibrate(draft, settings.seed)
    return write_release(onnx_path, out, NAME, version, {}, data.digest, settings.seed, thresholds), net


__all__ = ["LANES", "NAME", "ROUTES", "THRESHOLDS", "TrainSettings", "fit", "train"]
