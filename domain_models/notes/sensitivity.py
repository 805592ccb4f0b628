"""Per-variant INT8 sensitivity on the hand-written DEV notes (+ generated notes for flip counts).

    nice -n 10 python -m domain_models.notes.sensitivity --model notes-fp32.onnx [--variants a,b]

The FP32 graph is the one ``factory-models train notes --work DIR`` leaves in DIR. For each variant
it prints the DEV macro-F1 drop per head and how many argmax decisions differ from FP32 on DEV +
600 generated notes: flips measure sensitivity, the DEV drop is what the gate sees. Never reads
the TEST set.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from domain_models.notes.data import DEV, MAX_LENGTH, generated, load_jsonl, tokenizer_path
from domain_models.notes.evaluate import OnnxNotes, score
from domain_models.notes.quant import PARTS, VARIANTS, Scope, build

GENERATED_SEED = 2000


def studied_scopes() -> list[Scope]:
    """Named variants, then each layer alone and each MatMul type alone (embedding FP32)."""
    layers = [Scope(f"layer-{i}-only", layers=(i,)) for i in range(6)]
    parts = [Scope(f"{p}-only", parts=(p,), embedding="fp32") for p in PARTS]
    return [*VARIANTS.values(), *layers, *parts, Scope("embedding-rows-only", parts=())]


def main(argv: list[str] | None = None) -> int:
    """Print one line per variant; return 0."""
    parser = argparse.ArgumentParser(prog="python -m domain_models.notes.sensitivity")
    parser.add_argument("--model", type=Path, required=True, help="FP32 notes .onnx")
    parser.add_argument("--variants", default="", help="Comma-separated names (default: the whole study)")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        parser.error(f"{args.model}: FP32 ONNX file not found")
    scopes = studied_scopes()
    if args.variants:
        wanted = set(args.variants.split(","))
        unknown = wanted - {s.name for s in scopes}
        if unknown:
            parser.error(f"unknown variant(s) {sorted(unknown)}")
        scopes = [s for s in scopes if s.name in wanted]
    tokenizer = tokenizer_path()
    dev, extra = load_jsonl(DEV), generated(600, GENERATED_SEED)
    texts = dev.texts + extra.texts

    def run(path: Path) -> tuple[np.ndarray, np.ndarray]:
        cat, urg, _ = OnnxNotes(path, tokenizer, MAX_LENGTH).run(texts)
        return cat, urg

    ref_c, ref_u = run(args.model)
    n = len(dev)
    base = score(dev, ref_c[:n], ref_u[:n])
    out = sys.stdout
    out.write(
        f"FP32 on {n} DEV notes: category {base.category_macro_f1:.4f}, urgency {base.urgency_macro_f1:.4f}\n"
    )
    out.write(
        "| variant | what | MB | DEV drop cat | DEV drop urg | flips cat | flips urg |\n|---|---|---|---|---|---|---|\n"
    )
    with tempfile.TemporaryDirectory(prefix="notes-sens-") as tmp:
        for scope in scopes:
            path = Path(tmp) / f"{scope.name}.onnx"
            build(args.model, path, scope)
            cat, urg = run(path)
            m = score(dev, cat[:n], urg[:n])
            flips_c = int((cat.argmax(1) != ref_c.argmax(1)).sum())
            flips_u = int((urg.argmax(1) != ref_u.argmax(1)).sum())
            out.write(
                f"| {scope.name} | {scope.describe()} | {path.stat().st_size / 1e6:.1f} | "
                f"{100 * (base.category_macro_f1 - m.category_macro_f1):+.2f} | "
                f"{100 * (base.urgency_macro_f1 - m.urgency_macro_f1):+.2f} | {flips_c} | {flips_u} |\n"
            )
            out.flush()
            path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
