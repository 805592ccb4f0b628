"""Notes operators labelled in the console, as extra training data for the category head.

``factoryctl notes export --labelled FILE`` writes them, one JSON object a line; only ``text`` and
``category`` (the operator's) are read here. The operator labels a note's category, not its
urgency, so these notes train the category head alone: the urgency head keeps learning from the
generated notes only, never from the model's own urgency guesses.

A plant's notes are few beside the thousands of generated ones, and they are written the plant's
way (its words, its language), which the generator does not know. Each labelled note therefore
counts :data:`EXTRA_WEIGHT` times a generated one: with the class balance, a few dozen of them are
enough to move the head in their own phrasing without outweighing the generated notes elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from domain_models.notes.head import Heads, fit_softmax
from protocol.inference import NOTE_CATEGORIES, NOTE_URGENCIES

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]

EXTRA_WEIGHT = 10.0


@dataclass(frozen=True)
class ExtraNotes:
    """Labelled notes' texts and category indices (into NOTE_CATEGORIES)."""

    texts: list[str]
    category: Ints

    def __len__(self) -> int:
        return len(self.texts)


def load_extra(paths: list[Path]) -> ExtraNotes:
    """Read ``{"text", "category", ...}`` lines of each file; errors name the file, line and value."""
    texts: list[str] = []
    cats: list[int] = []
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--extra {path}: cannot read labelled notes: {exc}") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text, category = row["text"], row["category"]
                if not isinstance(text, str) or not text.strip():
                    raise ValueError("empty text")
                cats.append(NOTE_CATEGORIES.index(category))
                texts.append(text)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"--extra {path}:{number}: need JSON with text and category in "
                    f"{list(NOTE_CATEGORIES)} ({exc})"
                ) from None
    if not texts:
        raise ValueError(f"--extra {', '.join(map(str, paths))}: no labelled notes")
    return ExtraNotes(texts, np.array(cats, np.int64))


def fit_heads_with_extra(
    x: Floats,
    category: Ints,
    urgency: Ints,
    x_extra: Floats | None = None,
    extra: ExtraNotes | None = None,
    seed: int = 0,
    weight: float = EXTRA_WEIGHT,
) -> Heads:
    """Both heads on the generated notes' embeddings ``x``; the category head on the labelled
    notes' ``x_extra`` too, each counting ``weight`` times."""
    uw, ub = fit_softmax(x, urgency, len(NOTE_URGENCIES), seed=seed + 1)
    if extra is None or x_extra is None or not len(extra):
        cw, cb = fit_softmax(x, category, len(NOTE_CATEGORIES), seed=seed)
        return Heads(cw, cb, uw, ub)
    if weight <= 0:
        raise ValueError(f"--extra-weight must be > 0, got {weight:g}")
    xs = np.concatenate([x, x_extra]).astype(np.float32)
    ys = np.concatenate([category, extra.category])
    ws = np.concatenate([np.ones(len(x), np.float32), np.full(len(extra), weight, np.float32)])
    cw, cb = fit_softmax(xs, ys, len(NOTE_CATEGORIES), seed=seed, sample_weight=ws)
    return Heads(cw, cb, uw, ub)
