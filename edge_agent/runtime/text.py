"""The runner of text models (task ``notes``): tokenizers + onnxruntime, no torch on the gateway.

A note arrives as a Frame whose ``text`` is set (its image is empty). The manifest's
``text.tokenizer`` file tokenizes it; the graph's inputs, outputs, labels and urgency keys follow
the ``notes`` contract in ``protocol.inference``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
from tokenizers import Tokenizer

from edge_agent.frames import Frame
from edge_agent.runtime.model import ModelLoadError, Prediction, ReleaseIdentity, open_session
from edge_agent.runtime.tasks import Array, Output
from protocol.inference import (
    CATEGORY_OUTPUT,
    EMBEDDING_OUTPUT,
    NOTES_INPUTS,
    URGENCY_OUTPUT,
    URGENCY_PREFIX,
)
from protocol.manifest import ModelManifest, load_manifest
from protocol.messages import MAX_NOTE_CHARS, NotesOutput, utcnow, wire_text

log = logging.getLogger(__name__)


def urgency_labels(manifest: ModelManifest, where: str) -> tuple[str, ...]:
    """Urgency labels in ``urgency_probs`` order, from the ``urgency.<label>`` thresholds."""
    pairs = sorted(
        (int(index), key.removeprefix(URGENCY_PREFIX))
        for key, index in manifest.thresholds.items()
        if key.startswith(URGENCY_PREFIX)
    )
    if not pairs or [i for i, _ in pairs] != list(range(len(pairs))):
        raise ModelLoadError(
            f"{where}: thresholds must map 'urgency.<label>' to indices 0..n-1, got {manifest.thresholds}"
        )
    return tuple(label for _, label in pairs)


class TextRunner(ReleaseIdentity):
    """A verified notes model: tokenize -> forward -> NotesOutput."""

    def __init__(self, manifest_path: Path, slot: str, threads: int = 1) -> None:
        where = str(manifest_path)
        self.manifest: ModelManifest = load_manifest(manifest_path)  # verifies artifact and file hashes
        self.slot = slot
        m = self.manifest
        if m.task != "notes" or m.text is None:
            raise ModelLoadError(f"{where}: task {m.task!r} is not a text (notes) model")
        if tuple(s.name for s in m.inputs) != NOTES_INPUTS:
            raise ModelLoadError(
                f"{where}: a notes model takes inputs {list(NOTES_INPUTS)}, manifest has {[s.name for s in m.inputs]}"
            )
        names = [o.name for o in m.outputs]
        if CATEGORY_OUTPUT not in names or URGENCY_OUTPUT not in names:
            raise ModelLoadError(f"{where}: outputs {names} lack {CATEGORY_OUTPUT!r} / {URGENCY_OUTPUT!r}")
        self.urgencies = urgency_labels(m, where)
        try:
            self._tokenizer = Tokenizer.from_file(str(manifest_path.parent / m.text.tokenizer))
        except Exception as exc:  # tokenizers raises a bare Exception on malformed JSON
            raise ModelLoadError(f"{where}: cannot load tokenizer {m.text.tokenizer}: {exc}") from exc
        self._tokenizer.enable_truncation(max_length=m.text.max_length)
        # Pad to the longest note of a batch, not max_length: the mask makes padding inert and a
        # 12-token note then costs 12 tokens of attention, not 64.
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a password
        self._lowercase = m.text.lowercase
        self._session = open_session(manifest_path, m, threads)
        # One note per run even though the graph takes batches: dynamic INT8 picks activation scales
        # per batch, so a note batched with others scores up to ~0.04 differently than alone.
        # Notes trickle in; consistency (and the golden check) beats the small batching gain.
        self.dynamic_batch = False
        # The graph computes the note's embedding anyway; fetching it costs a copy of 384 floats,
        # and the drift watch measures how far a note lies from its label's fit-time notes.
        self._fetch = [CATEGORY_OUTPUT, URGENCY_OUTPUT] + (
            [EMBEDDING_OUTPUT] if EMBEDDING_OUTPUT in names else []
        )
        # Embeddings (L2-normalised) of the notes of the last infer() call, one row per note; none
        # when the release does not output them.
        self.last_embeddings: np.ndarray | None = None
        log.info("slot %s: loaded %s %s (notes, %d thread(s))", slot, m.name, m.version, threads)

    def pre_process(self, frames: Sequence[Frame]) -> dict[str, np.ndarray]:
        """Frames' texts -> padded token ids and attention mask."""
        texts = []
        for f in frames:
            if f.text is None:
                raise ValueError(
                    f"slot {self.slot}: frame {f.ref} from {f.source} has no text for a notes model"
                )
            texts.append(f.text.lower() if self._lowercase else f.text)
        encodings = self._tokenizer.encode_batch(texts)
        ids, mask = NOTES_INPUTS
        return {
            ids: np.array([e.ids for e in encodings], dtype=np.int64),
            mask: np.array([e.attention_mask for e in encodings], dtype=np.int64),
        }

    def forward(self, feeds: dict[str, np.ndarray]) -> list[Array]:
        """Run the session for both heads (and the embedding, when the release outputs it)."""
        outputs: list[Array] = self._session.run(self._fetch, feeds)
        return outputs

    def post_process(
        self, outputs: Sequence[Array], batch: int, texts: Sequence[str | None] | None = None
    ) -> list[NotesOutput]:
        """Probabilities -> NotesOutput (scores: categories by name, urgencies as ``urgency.<label>``).

        ``texts`` are the notes themselves, carried in the result so the cloud can show what was
        written, not only how it was triaged.
        """
        m = self.manifest
        notes = list(texts) if texts is not None else [None] * batch
        cat = np.clip(np.asarray(outputs[0], np.float32), 0.0, 1.0)
        urg = np.clip(np.asarray(outputs[1], np.float32), 0.0, 1.0)
        if cat.shape != (batch, len(m.labels)) or urg.shape != (batch, len(self.urgencies)):
            raise ValueError(
                f"model {m.name} {m.version}: outputs {cat.shape} / {urg.shape}, expected "
                f"({batch}, {len(m.labels)}) / ({batch}, {len(self.urgencies)})"
            )
        results = []
        for c_row, u_row, text in zip(cat, urg, notes, strict=True):
            c, u = int(c_row.argmax()), int(u_row.argmax())
            scores = {label: round(float(p), 6) for label, p in zip(m.labels, c_row, strict=True)}
            scores |= {
                URGENCY_PREFIX + lbl: round(float(p), 6) for lbl, p in zip(self.urgencies, u_row, strict=True)
            }
            results.append(
                NotesOutput(
                    label=m.labels[c],
                    score=float(c_row[c]),
                    category=m.labels[c],
                    urgency=self.urgencies[u],
                    urgency_score=float(u_row[u]),
                    scores=scores,
                    text=None if text is None else wire_text(text, MAX_NOTE_CHARS),
                )
            )
        return results

    def infer(self, frames: Sequence[Frame]) -> list[Prediction]:
        """Classify up to one batch of notes."""
        if not frames:
            return []
        if len(frames) > 1:
            predictions: list[Prediction] = []
            embeddings: list[np.ndarray] = []
            for f in frames:
                predictions += self.infer([f])
                if self.last_embeddings is not None:
                    embeddings.append(self.last_embeddings)
            self.last_embeddings = np.concatenate(embeddings) if len(embeddings) == len(frames) else None
            return predictions
        started = time.perf_counter()
        texts = [f.text for f in frames]
        raw = self.forward(self.pre_process(frames))
        outputs = self.post_process(raw, len(frames), texts)
        latency_ms = (time.perf_counter() - started) * 1000.0
        self.last_embeddings = np.asarray(raw[2], np.float32) if len(raw) > 2 else None
        # Prediction.output is typed for image tasks; NotesOutput is a wire TaskOutput like them.
        return [Prediction(f, cast(Output, o), latency_ms) for f, o in zip(frames, outputs, strict=True)]

    def warm_up(self) -> None:
        """Run one short note so the first real note does not pay for allocation."""
        empty = np.zeros((0, 0, 3), dtype=np.uint8)
        self.infer([Frame("warm-up", "warm-up", utcnow(), empty, text="warm up note")])
