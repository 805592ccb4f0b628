"""Score notes models: macro-F1 of both heads and latency per note.

A release (a manifest) is run by the gateway's own runner, ``edge_agent.runtime.text.TextRunner``
(:class:`ReleaseNotes`), so its figures are what a gateway computes. A bare graph, which training
and the INT8 gate measure before any release exists, is run by :class:`OnnxNotes`: the same
tokenizer settings and onnxruntime session options, without a manifest.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from domain_models.common import PipelineError, session
from domain_models.notes.data import LabelledNotes
from domain_models.notes.head import macro_f1, per_class_f1
from edge_agent.frames import Frame
from edge_agent.runtime.model import ModelLoadError
from edge_agent.runtime.text import TextRunner
from protocol.inference import NOTE_CATEGORIES, NOTE_URGENCIES, NOTES_INPUTS, NOTES_OUTPUTS
from protocol.messages import NotesOutput, utcnow

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]
LATENCY_NOTE = "hyd hose on press 4 weeping oil at fitting, check this shift"
_NO_IMAGE = np.zeros((0, 0, 3), dtype=np.uint8)


@dataclass(frozen=True)
class NotesMetrics:
    """Macro-F1 per head (0-1) and per-class F1."""

    category_macro_f1: float
    urgency_macro_f1: float
    category_f1: dict[str, float]
    urgency_f1: dict[str, float]
    count: int


class NotesModel(Protocol):
    """What scoring needs of a model: each note's category and urgency."""

    def predict(self, texts: list[str]) -> tuple[Ints, Ints]:
        """Category and urgency of each text, as indices into NOTE_CATEGORIES and NOTE_URGENCIES."""
        ...

    def latency_ms(self, runs: int = 100) -> float:
        """Median milliseconds for one note, tokenization included."""
        ...


def _median_ms(run_once: Callable[[], object], runs: int) -> float:
    run_once()  # the first run pays for allocation
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run_once()
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


class ReleaseNotes:
    """A notes release run by the gateway's TextRunner, one note at a time as a gateway runs them."""

    def __init__(self, manifest_path: Path, threads: int = 1) -> None:
        self.where = str(manifest_path)
        try:
            self.runner = TextRunner(manifest_path, "evaluate", threads)
        except ModelLoadError as exc:  # its message names the file and what is wrong
            raise PipelineError(str(exc)) from None
        self.manifest = self.runner.manifest

    def outputs(self, texts: list[str]) -> list[NotesOutput]:
        """The gateway's result of each note."""
        frames = [Frame("evaluate", f"note-{i}", utcnow(), _NO_IMAGE, text=t) for i, t in enumerate(texts)]
        outputs = []
        for prediction in self.runner.infer(frames):
            if not isinstance(prediction.output, NotesOutput):
                raise PipelineError(f"{self.where}: the runner gave a {prediction.output.kind!r} result")
            outputs.append(prediction.output)
        return outputs

    def predict(self, texts: list[str]) -> tuple[Ints, Ints]:
        """Category and urgency indices of the gateway's verdict on each text."""
        outputs = self.outputs(texts)
        unknown = sorted({o.category for o in outputs} - set(NOTE_CATEGORIES))
        unknown += sorted({o.urgency for o in outputs} - set(NOTE_URGENCIES))
        if unknown:
            raise PipelineError(
                f"{self.where}: labels {unknown} are not among the labelled notes' "
                f"{list(NOTE_CATEGORIES)} / {list(NOTE_URGENCIES)}"
            )
        category = np.array([NOTE_CATEGORIES.index(o.category) for o in outputs], np.int64)
        urgency = np.array([NOTE_URGENCIES.index(o.urgency) for o in outputs], np.int64)
        return category, urgency

    def latency_ms(self, runs: int = 100) -> float:
        """Median milliseconds for one note through the runner, tokenization included."""
        return _median_ms(lambda: self.outputs([LATENCY_NOTE]), runs)


class OnnxNotes:
    """A bare notes graph and its tokenizer, one note per run like the gateway runs them."""

    def __init__(self, onnx_path: Path, tokenizer_path: Path, max_length: int, threads: int = 1) -> None:
        self.session = session(onnx_path, threads)  # the gateway's session options
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a password

    def run(self, texts: list[str], batch: int = 1) -> tuple[Floats, Floats, Floats]:
        """(category probs, urgency probs, embeddings) for ``texts``.

        One note per run by default, as the gateway runs them: dynamic INT8 picks activation
        scales per batch, so batch companions (and their padding) would move a note's scores.
        """
        outs: list[list[Floats]] = [[], [], []]
        for start in range(0, len(texts), batch):
            enc = self.tokenizer.encode_batch(texts[start : start + batch])
            ids, mask = NOTES_INPUTS
            feeds = {
                ids: np.array([e.ids for e in enc], np.int64),
                mask: np.array([e.attention_mask for e in enc], np.int64),
            }
            result = self.session.run(list(NOTES_OUTPUTS), feeds)
            for acc, value in zip(outs, result, strict=True):
                acc.append(np.asarray(value, np.float32))
        cat, urg, emb = (np.concatenate(o) for o in outs)
        return cat, urg, emb

    def predict(self, texts: list[str]) -> tuple[Ints, Ints]:
        """Arg-max category and urgency of each text."""
        cat, urg, _ = self.run(texts)
        return cat.argmax(axis=1), urg.argmax(axis=1)

    def latency_ms(self, runs: int = 100) -> float:
        """Median milliseconds for one note, tokenization included."""
        return _median_ms(lambda: self.run([LATENCY_NOTE]), runs)


def score(notes: LabelledNotes, category_probs: Floats, urgency_probs: Floats) -> NotesMetrics:
    """Macro-F1 of both heads on labelled notes, from each head's probabilities."""
    return score_predictions(notes, category_probs.argmax(axis=1), urgency_probs.argmax(axis=1))


def score_predictions(notes: LabelledNotes, cat: Ints, urg: Ints) -> NotesMetrics:
    """Macro-F1 of both heads on labelled notes, from each note's predicted indices."""
    return NotesMetrics(
        category_macro_f1=macro_f1(notes.category, cat, len(NOTE_CATEGORIES)),
        urgency_macro_f1=macro_f1(notes.urgency, urg, len(NOTE_URGENCIES)),
        category_f1=per_class_f1(notes.category, cat, NOTE_CATEGORIES),
        urgency_f1=per_class_f1(notes.urgency, urg, NOTE_URGENCIES),
        count=len(notes),
    )


def evaluate(model: NotesModel, notes: LabelledNotes) -> NotesMetrics:
    """Run ``model`` on ``notes`` and score it."""
    return score_predictions(notes, *model.predict(notes.texts))


def latency_table(
    onnx_path: Path, tokenizer_path: Path, max_length: int, runs: int = 100
) -> dict[str, float]:
    """Median ms per note at 1 and 2 threads: ``{"1": ..., "2": ...}``."""
    return {
        str(t): OnnxNotes(onnx_path, tokenizer_path, max_length, threads=t).latency_ms(runs) for t in (1, 2)
    }
