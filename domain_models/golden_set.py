"""Attach a golden set to a release: a few dozen inputs and what the FP32 reference gives for them.

The gateway runs the set on its own CPU on install and refuses a build whose scores do not rank
as the reference's did (:mod:`edge_agent.runtime.golden`). The reference is computed here by the
gateway's own runner, so both sides read outputs the same way. An INT8 release names its FP32
parent as the reference: what the gateway then checks is the quantization on its CPU.

    python -m domain_models.golden_set --model REL.manifest.json [--reference FP32.manifest.json]
        (--images DIR | --texts NOTES.jsonl) [--count 32]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from domain_models.common import PipelineError
from edge_agent.frames import Frame
from edge_agent.runtime import build_runner
from edge_agent.runtime.golden import VALUE_DIGITS, GoldenFigures, compare, golden_value, run_inputs
from edge_agent.runtime.model import Prediction
from protocol.manifest import (
    GOLDEN_FRAMES_KEY,
    TEXT_TASKS,
    GoldenReference,
    GoldenSet,
    ManifestError,
    ModelManifest,
    load_manifest,
    sha256_file,
)
from protocol.messages import DefectOutput, utcnow

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]
IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
COUNT = 32
# Least rank correlation with the reference. FP32 on another CPU differs in the last bits only;
# INT8 moves scores a little but must keep their order (the bundled PatchCore INT8 ranks 0.99
# with FP32 on fresh parts; with 8-bit weights on an AVX2 CPU it ranked 0.90).
MIN_RANK_FP32, MIN_RANK_INT8 = 0.99, 0.95
# An input is decisive when its label is clear: a defect score this far from 0.5 (the threshold),
# or the top class this far ahead of the next.
DECISIVE_MARGIN = 0.05


def decisiveness(prediction: Prediction) -> float:
    """How clear the label is: distance of the defect score from the threshold, or top-1 minus top-2."""
    output = prediction.output
    if isinstance(output, DefectOutput):
        return abs(golden_value(prediction) - 0.5)
    scores = sorted(getattr(output, "scores", {}).values(), reverse=True)
    if len(scores) >= 2:
        return scores[0] - scores[1]
    return abs(golden_value(prediction) - 0.5)


def _frames(inputs: Sequence[Image] | Sequence[str]) -> list[Frame]:
    now = utcnow()
    empty = np.empty((0,), np.uint8)
    return [
        Frame("golden-set", f"#{i}", now, empty, x)
        if isinstance(x, str)
        else Frame("golden-set", f"#{i}", now, x)
        for i, x in enumerate(inputs)
    ]


def attach(
    manifest_path: Path,
    inputs: Sequence[Image] | Sequence[str],
    reference: Path | None = None,
    min_rank_correlation: float | None = None,
) -> GoldenFigures:
    """Write the golden inputs beside ``manifest_path``, record ``reference``'s outputs in the
    manifest (rewritten in place), and return this release's own figures against them."""
    manifest = load_manifest(manifest_path)
    reference_path = reference or manifest_path
    reference_manifest = load_manifest(reference_path)
    if len(inputs) < 4:
        raise PipelineError(f"{manifest_path}: a golden set needs at least 4 inputs, got {len(inputs)}")
    text = manifest.task in TEXT_TASKS
    if text != all(isinstance(x, str) for x in inputs):
        raise PipelineError(f"{manifest_path}: a {manifest.task} model takes {'texts' if text else 'images'}")
    stored = list(inputs) if text else [_stored_frame(x, manifest) for x in inputs if not isinstance(x, str)]
    frames = _frames(stored)
    predictions = run_inputs(build_runner(reference_path, "golden-set", threads=1), frames)
    own = run_inputs(build_runner(manifest_path, "golden-set", threads=1), frames)
    golden = GoldenSet(
        inputs=_write_inputs(manifest_path, reference_manifest, manifest.task, stored),
        reference=tuple(
            GoldenReference(
                label=p.output.label,
                value=round(golden_value(p), VALUE_DIGITS),
                decisive=decisiveness(p) >= DECISIVE_MARGIN,
                build_value=round(golden_value(o), VALUE_DIGITS),
            )
            for p, o in zip(predictions, own, strict=True)
        ),
        reference_model=f"{reference_manifest.name} {reference_manifest.version}",
        min_rank_correlation=min_rank_correlation
        if min_rank_correlation is not None
        else (MIN_RANK_FP32 if reference is None else MIN_RANK_INT8),
    )
    files = {**manifest.files, golden.inputs: sha256_file(manifest_path.parent / golden.inputs)}
    updated = manifest.model_copy(update={"golden_set": golden, "files": files})
    manifest_path.write_text(
        ModelManifest.model_validate(updated.model_dump()).model_dump_json(indent=2) + "\n"
    )
    figures = compare(golden, run_inputs(build_runner(manifest_path, "golden-set", threads=1), frames))
    log.info("%s: %s", manifest_path.name, figures.describe())
    return figures


def _stored_frame(image: Image, manifest: ModelManifest) -> Image:
    """The frame at the model's input size: the runner's resize is then the identity, and the set
    stays small (32 frames of 256x192 instead of 640x480)."""
    spec = manifest.preprocessing
    if spec is None:
        raise PipelineError(f"{manifest.name}: an image model without preprocessing")
    width, height = spec.resize
    if image.shape[:2] == (height, width):
        return np.ascontiguousarray(image)
    return np.asarray(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA), np.uint8)


def _write_inputs(
    manifest_path: Path, reference: ModelManifest, task: str, stored: Sequence[Image] | Sequence[str]
) -> str:
    """Named after the reference's artifact, so an INT8 release beside its FP32 parent shares the
    parent's file; a file of that name holding other inputs is refused, not overwritten (it is
    hashed in another manifest)."""
    stem = reference.artifact.removesuffix(".onnx")
    buffer = io.BytesIO()
    if task in TEXT_TASKS:
        name = f"{stem}.golden-set.json"
        buffer.write((json.dumps(list(stored), indent=1) + "\n").encode("utf-8"))
    else:
        name = f"{stem}.golden-set.npz"
        np.savez_compressed(buffer, **{GOLDEN_FRAMES_KEY: np.stack(list(stored))})
    target = manifest_path.parent / name
    if target.is_file() and not _same_inputs(target, stored, task):
        raise PipelineError(
            f"{target}: holds other golden inputs (another release lists it); pass the same inputs"
        )
    if not target.is_file():
        target.write_bytes(buffer.getvalue())
    return name


def _same_inputs(path: Path, stored: Sequence[Image] | Sequence[str], task: str) -> bool:
    if task in TEXT_TASKS:
        return bool(json.loads(path.read_text("utf-8")) == list(stored))
    with np.load(path, allow_pickle=False) as archive:
        return bool(np.array_equal(archive[GOLDEN_FRAMES_KEY], np.stack(list(stored))))


def pick(items: Sequence[Path], count: int) -> list[Path]:
    """``count`` items spread evenly over a sorted listing (every kind of a sorted MVTec tree)."""
    if len(items) <= count:
        return list(items)
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def read_images(folder: Path, count: int) -> list[Image]:
    """Up to ``count`` images under ``folder`` (recursively), evenly spread over the sorted names."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise PipelineError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    images = []
    for p in pick(paths, count):
        image = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if image is None:
            raise PipelineError(f"{p}: not a readable image")
        images.append(np.asarray(image, np.uint8))
    return images


def read_texts(path: Path, count: int) -> list[str]:
    """Up to ``count`` texts of a JSONL file (field ``text``), evenly spread."""
    texts = []
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if line.strip():
            try:
                texts.append(str(json.loads(line)["text"]))
            except (ValueError, KeyError, TypeError):
                raise PipelineError(f"{path}:{n}: expected a JSON object with a 'text' field") from None
    step = max(len(texts) / count, 1.0)
    return [texts[int(i * step)] for i in range(min(count, len(texts)))]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: attach a golden set to one release."""
    parser = argparse.ArgumentParser(
        prog="python -m domain_models.golden_set", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--model", type=Path, required=True, help="the release's manifest (rewritten in place)"
    )
    parser.add_argument(
        "--reference", type=Path, help="manifest of the reference build (default: the model itself)"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, help="folder of images (read recursively)")
    source.add_argument("--texts", type=Path, help="JSONL file of notes with a 'text' field")
    parser.add_argument("--count", type=int, default=COUNT, help="inputs in the set (default %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        inputs: list[Image] | list[str] = (
            read_images(args.images, args.count) if args.images else read_texts(args.texts, args.count)
        )
        figures = attach(args.model, inputs, args.reference)
    except (PipelineError, ManifestError, RuntimeError) as exc:
        sys.stderr.write(f"golden set: {exc}\n")
        return 1
    sys.stdout.write(figures.describe() + "\n")
    return 0 if figures.passed else 1


if __name__ == "__main__":
    sys.exit(main())
