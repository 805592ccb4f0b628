"""MODEL_CARD.md of a notes release, written from its manifest and evaluation figures.

The words are in ``domain_models/templates/notes_card.md.j2``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domain_models.cards import cpu_count, render
from protocol.inference import URGENCY_PREFIX
from protocol.manifest import load_manifest

REPRODUCE = "nice -n 10 factory-models train notes --out domain_models/notes/artifacts --seed {seed}"


def _f1_rows(columns: dict[str, dict[str, Any]], head: str) -> list[list[object]]:
    first = next(iter(columns.values()))
    return [[c, *(f"{col[f'{head}_f1'][c]:.4f}" for col in columns.values())] for c in first[f"{head}_f1"]]


def _variant_rows(ev: dict[str, Any]) -> list[list[object]]:
    fp32 = ev["fp32"]
    dev32 = ev["dev"]["fp32"]
    rows: list[list[object]] = [
        [
            "FP32 (reference)",
            "no quantization",
            f"{dev32['category_macro_f1']:.4f}",
            f"{dev32['urgency_macro_f1']:.4f}",
            "-",
            f"{fp32['size_bytes'] / 1e6:.1f}",
            f"{fp32['latency_ms_per_note']['1']:.2f}",
            f"{fp32['latency_ms_per_note']['2']:.2f}",
        ]
    ]
    for v in ev["variants"]:
        drops = [g.split("drop ")[1].split(" points")[0] for g in v["gates"]]
        rows.append(
            [
                v["name"],
                v["what"],
                f"{v['dev']['category_macro_f1']:.4f}",
                f"{v['dev']['urgency_macro_f1']:.4f}",
                ("pass" if v["passed"] else "REFUSED") + f" ({' / '.join(drops)})",
                f"{v['size_bytes'] / 1e6:.1f}",
                f"{v['latency_ms_per_note']['1']:.2f}",
                f"{v['latency_ms_per_note']['2']:.2f}",
            ]
        )
    return rows


def _macro_rows(dev: dict[str, Any], test: dict[str, Any], shipped: str) -> list[list[object]]:
    """Macro-F1 of FP32 and of the shipped model per head: DEV (the gate set), then TEST if scored."""
    heads = ("category", "urgency")
    rows: list[list[object]] = [
        ["DEV (gate)", h, f"{dev['fp32'][f'{h}_macro_f1']:.4f}", f"{dev['shipped'][f'{h}_macro_f1']:.4f}"]
        for h in heads
    ]
    if "fp32" in test and shipped in test:
        rows += [
            [
                "TEST (reported only)",
                h,
                f"{test['fp32'][f'{h}_macro_f1']:.4f}",
                f"{test[shipped][f'{h}_macro_f1']:.4f}",
            ]
            for h in heads
        ]
    return rows


def _test_drops(test: dict[str, Any]) -> list[tuple[str, float, float]] | None:
    """(variant, category drop, urgency drop) against FP32 on TEST, in points; None if not scored."""
    if "fp32" not in test:
        return None
    ref = test["fp32"]
    return [
        (
            k,
            100 * (ref["category_macro_f1"] - v["category_macro_f1"]),
            100 * (ref["urgency_macro_f1"] - v["urgency_macro_f1"]),
        )
        for k, v in test.items()
        if k != "fp32"
    ]


def write(path: Path, manifest_path: Path, ev: dict[str, Any]) -> None:
    """Write the card; every figure comes from ``ev`` (the .eval.json) or the manifest."""
    m = load_manifest(manifest_path)
    facts, test = ev["facts"], ev.get("test", {})
    shipped = ev["shipped"]
    variant: dict[str, Any] | None = next((v for v in ev["variants"] if v["name"] == shipped), None)
    # Urgency labels live in the thresholds as "urgency.<label>" -> index (one label list per manifest).
    urgency = {
        k.removeprefix(URGENCY_PREFIX): v for k, v in m.thresholds.items() if k.startswith(URGENCY_PREFIX)
    }
    fp32 = ev["fp32"]
    text = render(
        "notes_card.md.j2",
        m=m,
        facts=facts,
        shipped=shipped,
        shipped_what=variant["what"] if variant is not None else "FP32, no quantization",
        urgencies=sorted(urgency, key=urgency.__getitem__),
        macro_rows=_macro_rows(ev["dev"], test, shipped),
        test=test,
        test_names=list(test),
        category_rows=_f1_rows(test, "category") if test else [],
        urgency_rows=_f1_rows(test, "urgency") if test else [],
        gates=ev["gates"],
        generated=ev["generated_validation"],
        variant_rows=_variant_rows(ev),
        cpus=cpu_count(),
        refused=[v["name"] for v in ev["variants"] if not v["passed"]],
        size_ratio=fp32["size_bytes"] / variant["size_bytes"] if variant is not None else None,
        faster=variant is not None and variant["latency_ms_per_note"]["1"] < fp32["latency_ms_per_note"]["1"],
        test_drops=_test_drops(test),
        reproduce=REPRODUCE.format(seed=facts["seed"]),
    )
    path.write_text(text, encoding="utf-8")
