"""Run a notes ONNX graph with onnxruntime + tokenizers: probabilities, macro-F1 and latency."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

from domain_models.notes.data import LabelledNotes
from domain_models.notes.head import macro_f1, per_class_f1
from protocol.inference import NOTE_CATEGORIES, NOTE_URGENCIES, NOTES_INPUTS, NOTES_OUTPUTS

Floats = npt.NDArray[np.float32]
LATENCY_NOTE = "hyd hose on press 4 weeping oil at fitting, check this shift"


@dataclass(frozen=True)
class NotesMetrics:
    """Macro-F1 per head (0-1) and per-class F1."""

    category_macro_f1: float
    urgency_macro_f1: float
    category_f1: dict[str, float]
    urgency_f1: dict[str, float]
    count: int


class OnnxNotes:
    """A notes graph and its tokenizer, batched like the gateway runs it."""

    def __init__(self, onnx_path: Path, tokenizer_path: Path, max_length: int, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
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

    def latency_ms(self, runs: int = 100) -> float:
        """Median milliseconds for one note, tokenization included."""
        self.run([LATENCY_NOTE])
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            self.run([LATENCY_NOTE])
            times.append((time.perf_counter() - started) * 1000.0)
        return statistics.median(times)


def score(notes: LabelledNotes, category_probs: Floats, urgency_probs: Floats) -> NotesMetrics:
    """Macro-F1 of both heads on labelled notes."""
    cat = category_probs.argmax(axis=1)
    urg = urgency_probs.argmax(axis=1)
    return NotesMetrics(
        category_macro_f1=macro_f1(notes.category, cat, len(NOTE_CATEGORIES)),
        urgency_macro_f1=macro_f1(notes.urgency, urg, len(NOTE_URGENCIES)),
        category_f1=per_class_f1(notes.category, cat, NOTE_CATEGORIES),
        urgency_f1=per_class_f1(notes.urgency, urg, NOTE_URGENCIES),
        count=len(notes),
    )


def evaluate(model: OnnxNotes, notes: LabelledNotes) -> NotesMetrics:
    """Run ``model`` on ``notes`` and score it."""
    cat, urg, _ = model.run(notes.texts)
    return score(notes, cat, urg)


def latency_table(
    onnx_path: Path, tokenizer_path: Path, max_length: int, runs: int = 100
) -> dict[str, float]:
    """Median ms per note at 1 and 2 threads: ``{"1": ..., "2": ...}``."""
    return {
        str(t): OnnxNotes(onnx_path, tokenizer_path, max_length, threads=t).latency_ms(runs) for t in (1, 2)
    }
