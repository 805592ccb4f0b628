"""The ``notes`` domain of ``factory-models``: train / evaluate / export / quantize.

Torch is imported only by ``train`` and ``export``; ``evaluate`` and ``quantize`` need only
onnxruntime and tokenizers.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from domain_models.cli_options import add_evaluate_arguments
from domain_models.common import PipelineError
from domain_models.notes.data import DEV, MAX_LENGTH, load_jsonl, tokenizer_path
from domain_models.notes.extra import EXTRA_WEIGHT, load_extra
from domain_models.notes.quant import VARIANTS
from domain_models.notes.release import DEFAULT_TOLERANCE_POINTS

EXIT_REFUSED = 3  # quantize: INT8 lost more than the tolerance


def _variants(value: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in VARIANTS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown variant(s) {unknown or value!r}; known: {', '.join(VARIANTS)}"
        )
    return names


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Options of ``command`` for the notes domain."""
    if command == "train":
        parser.add_argument("--out", type=Path, required=True, help="Folder for the release files")
        parser.add_argument("--seed", type=int, default=0, help="Generator and head seed")
        parser.add_argument("--train-notes", type=int, default=3000, help="Generated training notes")
        parser.add_argument(
            "--tolerance", type=float, default=DEFAULT_TOLERANCE_POINTS, help="INT8 gate, points"
        )
        parser.add_argument("--work", type=Path, default=None, help="Keep heads.npz and the FP32 ONNX here")
        parser.add_argument("--threads", type=int, default=2, help="Torch CPU threads")
        parser.add_argument(
            "--variants", type=_variants, default=None, help="INT8 variants to try in order (comma-separated)"
        )
        parser.add_argument(
            "--extra", type=Path, action="append", default=[], metavar="FILE.jsonl",
            help="Notes operators labelled (factoryctl notes export --labelled); repeatable",
        )  # fmt: skip
        parser.add_argument(
            "--extra-weight",
            type=float,
            default=EXTRA_WEIGHT,
            help="How many generated notes one labelled note counts as",
        )
    elif command == "evaluate":
        add_evaluate_arguments(parser, "JSONL of {text, category, urgency}", data_default=DEV)
    elif command == "export":
        parser.add_argument("--heads", type=Path, required=True, help="heads.npz written by train --work")
        parser.add_argument("--out", type=Path, required=True, help="FP32 .onnx file to write")
    elif command == "quantize":
        parser.add_argument("--model", type=Path, required=True, help="FP32 .onnx written by export")
        parser.add_argument("--out", type=Path, required=True, help="Folder to package the INT8 release into")
        parser.add_argument("--data", type=Path, default=DEV, help="Hand-written JSONL the gate judges on")
        parser.add_argument(
            "--tolerance", type=float, default=DEFAULT_TOLERANCE_POINTS, help="Largest drop, points"
        )
        parser.add_argument("--seed", type=int, default=0, help="Seed the heads were trained with (card)")
        parser.add_argument(
            "--variants", type=_variants, default=None, help="INT8 variants to try in order (comma-separated)"
        )
    else:
        raise ValueError(f"notes domain: unknown command {command!r}")


def _evaluate(args: argparse.Namespace) -> int:
    from domain_models.notes.evaluate import ReleaseNotes, evaluate

    model = ReleaseNotes(args.model, args.threads)  # the gateway's runner: verifies the release
    manifest = model.manifest
    metrics = evaluate(model, load_jsonl(args.data))
    latency = model.latency_ms()
    out = sys.stdout
    out.write(f"{manifest.name} {manifest.version} on {args.data} ({metrics.count} notes)\n")
    out.write(f"  category macro-F1 {metrics.category_macro_f1:.4f}\n")
    for name, f1 in metrics.category_f1.items():
        out.write(f"    {name:<20} F1 {f1:.4f}\n")
    out.write(f"  urgency  macro-F1 {metrics.urgency_macro_f1:.4f}\n")
    for name, f1 in metrics.urgency_f1.items():
        out.write(f"    {name:<20} F1 {f1:.4f}\n")
    out.write(f"  latency {latency:.2f} ms/note (median, {args.threads} thread(s), tokenization included)\n")
    if args.json is not None:
        args.json.write_text(json.dumps({**asdict(metrics), "latency_ms": latency}, indent=2) + "\n")
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from domain_models.notes.gate import CANDIDATES, try_variants
    from domain_models.notes.train import package

    if not args.model.is_file():
        raise PipelineError(f"{args.model}: FP32 ONNX file not found")
    tokenizer = tokenizer_path()
    dev = load_jsonl(args.data)
    with tempfile.TemporaryDirectory(prefix="notes-q-") as tmp:
        q = try_variants(args.model, Path(tmp), tokenizer, dev, args.tolerance, args.variants or CANDIDATES)
        for v in q.tried:
            for g in v.gates:
                sys.stdout.write(f"[{v.scope.name}] {g.describe()}\n")
        if not q.passed:
            sys.stderr.write(
                "factory-models quantize notes: INT8 refused (drop above tolerance), nothing written\n"
            )
            return EXIT_REFUSED
        facts: dict[str, object] = {
            "seed": args.seed,
            "train_notes": "(not recorded by quantize)",
            "dev_file": args.data.name,
            "dev_notes": len(dev),
            "tolerance_points": args.tolerance,
            "gate_notes": f"{len(dev)} notes from {args.data.name}",
        }
        manifest = package(q, args.model, tokenizer, args.out, facts, fallback_fp32=False)
    sys.stdout.write(f"wrote {manifest}\n")
    return 0


def run(command: str, args: argparse.Namespace) -> int:
    """Run ``command``; a PipelineError is printed (what and where) and returns 2."""
    try:
        if command == "train":
            # Read the labelled notes first: a bad file is refused before minutes of training.
            extra = load_extra(args.extra) if args.extra else None
            if args.extra_weight <= 0:
                raise ValueError(f"--extra-weight must be > 0, got {args.extra_weight:g}")
            import torch

            from domain_models.notes.train import train_all

            torch.set_num_threads(args.threads)
            from domain_models.notes.gate import CANDIDATES

            manifest = train_all(
                args.out, args.seed, args.train_notes, args.tolerance, args.work, args.variants or CANDIDATES,
                extra, args.extra_weight,
            )  # fmt: skip
            sys.stdout.write(f"wrote {manifest}\n")
            return 0
        if command == "evaluate":
            return _evaluate(args)
        if command == "export":
            from domain_models.notes.head import Heads
            from domain_models.notes.train import export

            sys.stdout.write(f"wrote {export(Heads.load(args.heads), args.out)}\n")
            return 0
        if command == "quantize":
            return _quantize(args)
    except (PipelineError, ValueError) as exc:
        sys.stderr.write(f"factory-models {command} notes: {exc}\n")
        return 2
    raise ValueError(f"notes domain: unknown command {command!r}")


__all__ = ["MAX_LENGTH", "add_arguments", "run"]
