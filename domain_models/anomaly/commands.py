"""The ``defect`` domain of ``factory-models``: train / evaluate / quantize / export.

Torch is imported only by ``train``; the other commands run with onnxruntime alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from domain_models.common import PipelineError

if TYPE_CHECKING:
    from domain_models.anomaly.train import TrainConfig


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Options of ``command`` for the defect (anomaly) domain."""
    if command == "train":
        parser.add_argument("--data", type=Path, required=True, help="MVTec AD folder")
        parser.add_argument("--out", type=Path, required=True, help="Folder for the release files")
        parser.add_argument("--seed", type=int, default=0, help="Split and coreset seed")
        parser.add_argument("--max-images", type=int, default=200, help="Use at most this many good images")
        parser.add_argument("--frr", type=float, default=0.01, help="False-reject rate the threshold targets")
        parser.add_argument("--width", type=int, default=256, help="Model input width")
        parser.add_argument("--height", type=int, default=192, help="Model input height")
        parser.add_argument("--coreset", type=int, default=1000, help="Memory-bank patches")
        parser.add_argument("--name", default="defect-patchcore", help="Model name")
        parser.add_argument("--version", default="1.0.0", help="Model version")
        parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    elif command == "evaluate":
        parser.add_argument("--model", type=Path, required=True, help="<name>.manifest.json")
        parser.add_argument("--data", type=Path, required=True, help="MVTec AD folder (test/ is used)")
        parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads (latency)")
        parser.add_argument("--json", type=Path, default=None, help="Also write the figures as JSON here")
    elif command == "quantize":
        parser.add_argument("--model", type=Path, required=True, help="FP32 <name>.manifest.json")
        parser.add_argument("--data", type=Path, required=True, help="The MVTec folder it was trained on")
        parser.add_argument("--tolerance", type=float, default=1.0, help="Largest allowed drop, in points")
        parser.add_argument(
            "--out", type=Path, default=None, help="Folder for INT8 (default: beside the model)"
        )
        parser.add_argument("--calib-images", type=int, default=64, help="Good images for activation ranges")
    elif command == "export":
        parser.add_argument("--model", type=Path, required=True, help="<name>.manifest.json")
        parser.add_argument("--out", type=Path, required=True, help="Folder to package the release into")
    else:
        raise ValueError(f"defect domain: unknown command {command!r}")


def _train(args: argparse.Namespace) -> int:
    from domain_models.anomaly.evaluate import format_report
    from domain_models.anomaly.train import train

    try:
        cfg = _train_config(args)
    except ValidationError as exc:
        details = "; ".join(
            f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}" for e in exc.errors()
        )
        raise PipelineError(f"invalid options: {details}") from None
    manifest, report = train(cfg)
    sys.stdout.write(f"wrote {manifest}\n")
    if report is not None:
        sys.stdout.write(format_report(report, f"{manifest.name} on {args.data}"))
    return 0


def _train_config(args: argparse.Namespace) -> TrainConfig:
    from domain_models.anomaly.train import TrainConfig

    return TrainConfig(
        data=args.data,
        out=args.out,
        seed=args.seed,
        max_images=args.max_images,
        frr=args.frr,
        width=args.width,
        height=args.height,
        coreset=args.coreset,
        name=args.name,
        version=args.version,
        threads=args.threads,
    )


def _evaluate(args: argparse.Namespace) -> int:
    from domain_models.anomaly.data import open_mvtec
    from domain_models.anomaly.evaluate import evaluate_onnx, format_report, open_model

    manifest, onnx_path = open_model(args.model)
    if manifest.preprocessing is None:
        raise PipelineError(f"{args.model}: no preprocessing")
    folder = open_mvtec(args.data, min_train=0)
    report = evaluate_onnx(
        onnx_path, manifest.preprocessing, manifest.thresholds["defect"], folder, args.threads
    )
    sys.stdout.write(format_report(report, f"{manifest.name} {manifest.version} on {args.data}"))
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from domain_models.anomaly.quantize import quantize_model

    result = quantize_model(args.model, args.data, args.tolerance, args.out, args.calib_images)
    for c in result.checks:
        sys.stdout.write(c.describe() + "\n")
    if result.manifest is None:
        sys.stderr.write(f"quantize: INT8 refused, {result.reason()}; nothing written\n")
        return 1
    sys.stdout.write(f"wrote {result.manifest}\n")
    return 0


def _export(args: argparse.Namespace) -> int:
    from domain_models.anomaly.evaluate import open_model

    manifest, onnx_path = open_model(args.model)  # verifies hashes and the graph's I/O
    args.out.mkdir(parents=True, exist_ok=True)
    names = [onnx_path.name, args.model.name, *manifest.files]
    card = args.model.parent / "MODEL_CARD.md"
    if card.is_file():
        names.append(card.name)
    for name in names:
        src = args.model.parent / name
        if src.resolve() != (args.out / name).resolve():
            shutil.copyfile(src, args.out / name)
    sys.stdout.write(f"packaged {len(names)} files of {manifest.name} {manifest.version} into {args.out}\n")
    return 0


_RUNNERS = {"train": _train, "evaluate": _evaluate, "quantize": _quantize, "export": _export}


def run(command: str, args: argparse.Namespace) -> int:
    """Run one command; a user-fixable problem is one line on stderr and exit code 2."""
    try:
        return _RUNNERS[command](args)
    except PipelineError as exc:
        sys.stderr.write(f"factory-models {command} defect: {exc}\n")
        return 2
