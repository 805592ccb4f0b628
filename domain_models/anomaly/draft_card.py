"""MODEL_CARD.md of a user-trained defect model: measured facts only, plus what only the user knows.

``factory-models train defect`` writes the draft beside the model; ``quantize defect`` adds (or
rewrites) its INT8 section, passed or refused, between markers so a second run replaces the first
and every other line stays as the user edited it. No torch here; the words are in
``domain_models/templates/anomaly_draft_*.md.j2``.
"""

from __future__ import annotations

import logging
import math
import shlex
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from domain_models.anomaly.card import figures_table, per_type_table, type_section
from domain_models.anomaly.data import GOOD, MVTecFolder, open_mvtec, read_image
from domain_models.anomaly.evaluate import AnomalyReport, missed_kinds
from domain_models.anomaly.quantize import QuantizeResult
from domain_models.anomaly.type_eval import TypeReport
from domain_models.cards import macro, render
from domain_models.common import LATENCY_HEADERS, PipelineError, latency_rows
from edge_agent.runtime.preprocess import to_tensor
from protocol.inference import DEFECT_KEY, TYPE_CONFIDENCE_KEY
from protocol.manifest import CARD_PROMPT_MARK, ModelManifest, artifact_path, load_manifest

log = logging.getLogger(__name__)

CARD_NAME = "MODEL_CARD.md"
TO_FILL_IN = "## To fill in"
INT8_BEGIN = "<!-- int8: begin (rewritten by factory-models quantize defect) -->"
INT8_END = "<!-- int8: end -->"
# Fewer calls than the bundled card's 5 x 40: a training run should not wait long for its card.
LATENCY_RUNS, LATENCY_REPEATS = 30, 3
NOTES = "anomaly_draft_notes.md.j2"


@dataclass(frozen=True)
class TrainFacts:
    """The run's own numbers: image counts, options, and the command that reproduces it."""

    data: Path
    available: int
    fitted: int
    held_out: int
    calibration: int
    labelled: str | None  # LabelledDefects.describe(), None without a type head
    coreset: int
    frr: float
    command: Sequence[str]
    cross_fitted: int = 0  # train/good images also scored out of fold for the threshold
    folds: int = 0


def reproduce_command(args: Mapping[str, object], type_head: bool) -> list[str]:
    """``factory-models train defect`` with every option that decides the model spelled out."""
    argv = ["factory-models", "train", "defect"]
    # A downloaded dataset is named by its id and cloud: its temporary folder may be gone.
    source = ["dataset_id", "cloud"] if args.get("dataset_id") is not None else ["data"]
    flags = [*source, "out", "seed", "max_images", "frr", "width", "height", "coreset", "name", "version"]
    flags.append("threads")  # torch's reductions depend on it, so the same figures need it too
    if args.get("threshold_folds"):
        flags.append("threshold_folds")
    if args.get("labelled") is not None:
        flags.append("labelled")
    for flag in flags:
        argv += ["--dataset" if flag == "dataset_id" else f"--{flag.replace('_', '-')}", str(args[flag])]
    if type_head:
        flag_value = args["type_flag"]
        argv += ["--type-confidence", str(args["type_confidence"])]
        argv += ["--type-flag", "off" if flag_value is None else str(flag_value)]
    return argv


def _test_counts(folder: MVTecFolder) -> dict[str, int]:
    """Images per test/ kind, good first; empty without test/."""
    counts = Counter(t.kind for t in folder.test)
    if not counts:
        return {}
    return {GOOD: counts.pop(GOOD, 0), **dict(sorted(counts.items()))}


def _latency(manifest_path: Path, manifest: ModelManifest, models: Mapping[str, Path]) -> list[list[str]]:
    """p50/p90 at 1 and 2 threads on the golden sample (a real part, already beside the model)."""
    spec = manifest.preprocessing
    if spec is None or manifest.golden is None:
        raise PipelineError(f"{manifest_path}: no preprocessing or golden sample to time the model on")
    image = read_image(manifest_path.parent / manifest.golden.input)
    feeds = {manifest.inputs[0].name: to_tensor([image], spec)}
    return latency_rows(models, feeds, threads=(1, 2), runs=LATENCY_RUNS, repeats=LATENCY_REPEATS)


def _data_rows(facts: TrainFacts, tests: Mapping[str, int], has_masks: bool) -> list[list[object]]:
    rows: list[list[object]] = [
        ["data folder", facts.data],
        ["train/good images found", facts.available],
        ["used to fit the memory bank", facts.fitted],
        ["train/good held out for the threshold", facts.held_out],
        ["calibration/good (threshold only)", facts.calibration],
        ["train/good scored out of fold for the threshold", f"{facts.cross_fitted} ({facts.folds} folds)"]
        if facts.folds
        else ["train/good scored out of fold for the threshold", "none"],
        ["labelled defects (type head)", facts.labelled or "none"],
    ]
    if tests:
        rows += [[f"test/{kind}", n] for kind, n in tests.items()]
        rows.append(["pixel masks (ground_truth/)", "yes" if has_masks else "no"])
    else:
        rows.append(["test/", "none: no held-out figures"])
    return rows


def _threads_note(latency: Sequence[Sequence[str]]) -> str:
    """A word when 2 threads measured slower than 1, which surprises a reader of the table."""
    p50 = {(row[0], row[1]): float(row[2]) for row in latency}
    slower = [name for (name, threads), ms in p50.items() if threads == "2" and ms > p50.get((name, "1"), ms)]
    return macro(NOTES, "threads_note")(slower)


def _known_limits(missed: Sequence[str]) -> str:
    return macro(NOTES, "known_limits")([m.split(":", 1)[0] for m in missed])


def write_train_card(
    manifest_path: Path,
    facts: TrainFacts,
    report: AnomalyReport | None,
    types: TypeReport | None,
) -> Path:
    """Write OUT/MODEL_CARD.md for a freshly trained model; returns its path."""
    manifest = load_manifest(manifest_path)
    spec = manifest.preprocessing
    if spec is None:
        raise PipelineError(f"{manifest_path}: no preprocessing")
    onnx_path = artifact_path(manifest_path, manifest)
    latency = _latency(manifest_path, manifest, {"FP32": onnx_path})
    folder = open_mvtec(facts.data, min_train=0, need_test=False)
    held = facts.held_out + facts.calibration + facts.cross_fitted
    missed = missed_kinds(report) if report is not None else []
    named = {"test/ (FP32)": report} if report is not None else None
    text = render(
        "anomaly_draft_card.md.j2",
        name=manifest.name,
        version=manifest.version,
        data=_data_rows(facts, _test_counts(folder), folder.has_masks),
        spec=spec,
        coreset=facts.coreset,
        kinds=manifest.labels[2:],  # after good and anomaly
        type_probability=manifest.thresholds.get(TYPE_CONFIDENCE_KEY, 0.0),
        threshold=manifest.thresholds[DEFECT_KEY],
        frr=facts.frr,
        held=held,
        folds=facts.folds,
        cross_fitted=facts.cross_fitted,
        allowed=math.floor(facts.frr * held),  # as threshold_at_false_reject counts them
        figures=figures_table(named) if named else None,
        per_type=per_type_table(named) if named else None,
        missed=missed,
        type_section=type_section(types),
        repeats=LATENCY_REPEATS,
        runs=LATENCY_RUNS,
        latency_headers=LATENCY_HEADERS,
        latency=latency,
        threads_note=_threads_note(latency),
        command=shlex.join(facts.command),
        to_fill_in=TO_FILL_IN,
        prompt_mark=CARD_PROMPT_MARK,
        known_limits=_known_limits(missed),
    )
    card = manifest_path.parent / CARD_NAME
    card.write_text(text)
    log.info("wrote %s", card)
    return card


def int8_section(result: QuantizeResult) -> str:
    """The card's INT8 section: the gate as printed, both models' figures, latency and sizes."""
    return render(
        "anomaly_draft_int8.md.j2",
        begin=INT8_BEGIN,
        end=INT8_END,
        written=result.manifest.name if result.manifest is not None else None,
        refusal=result.reason(),
        tolerance=result.tolerance,
        gate=[c.describe() for c in result.checks],
        figures=figures_table({"FP32": result.fp32, "INT8": result.int8}),
        latency_headers=LATENCY_HEADERS,
        latency=[list(r) for r in result.latency],
    )


def record_int8(manifest_path: Path, result: QuantizeResult) -> Path:
    """Put the INT8 section into the card beside ``manifest_path``, keeping the rest of it.

    A previous INT8 section is replaced; otherwise it goes before "To fill in" (or at the end).
    A model without a card (an older release) gets a card holding a title and this section.
    """
    card = manifest_path.parent / CARD_NAME
    section = int8_section(result)
    if not card.is_file():
        manifest = load_manifest(manifest_path)
        card.write_text(f"# {manifest.name} {manifest.version}: INT8 quantization\n\n{section}")
        return card
    text = card.read_text()
    begin, end = text.find(INT8_BEGIN), text.find(INT8_END)
    if begin >= 0 and end > begin:
        tail = text[end + len(INT8_END) :].removeprefix("\n")
        text = text[:begin] + section + tail
    elif f"\n{TO_FILL_IN}" in text:
        at = text.index(f"\n{TO_FILL_IN}") + 1
        text = text[:at] + section + "\n" + text[at:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    card.write_text(text)
    return card
