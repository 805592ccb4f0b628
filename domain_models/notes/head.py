"""Two linear softmax heads (category, urgency) on sentence embeddings, fitted with numpy.

A linear head is enough on MiniLM embeddings and fits in well under a second; it needs no torch,
so the CI retrain runs on the embeddings the bundled ONNX graph itself outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Heads:
    """Weights (dim x classes) and biases of both heads."""

    category_w: Floats
    category_b: Floats
    urgency_w: Floats
    urgency_b: Floats

    def save(self, path: Path) -> None:
        """Write the weights as a plain .npz (no pickle)."""
        np.savez(
            path, **{k: getattr(self, k) for k in ("category_w", "category_b", "urgency_w", "urgency_b")}
        )

    @classmethod
    def load(cls, path: Path) -> Heads:
        """Read weights written by ``save``."""
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(**{k: np.asarray(data[k], np.float32) for k in data.files})
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: not a notes heads file: {exc}") from exc


def fit_softmax(
    x: Floats,
    y: Ints,
    classes: int,
    epochs: int = 200,
    lr: float = 0.05,
    l2: float = 1e-2,
    seed: int = 0,
    sample_weight: Floats | None = None,
) -> tuple[Floats, Floats]:
    """Multinomial logistic regression by full-batch Adam; class-balanced so rare labels count.

    ``sample_weight`` (one per row) makes some rows count more, within the class balance.
    """
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need as many labels as embeddings (got {len(x)} and {len(y)}), at least one")
    rng = np.random.default_rng(seed)
    n, dim = x.shape
    w = (rng.standard_normal((dim, classes)) * 0.01).astype(np.float32)
    b = np.zeros(classes, np.float32)
    if sample_weight is None:
        counts = np.bincount(y, minlength=classes).astype(np.float32)
        sample_w = (n / (classes * np.maximum(counts, 1.0)))[y][:, None]
    else:
        if sample_weight.shape != (n,):
            raise ValueError(f"need one sample weight per embedding (got {sample_weight.shape}, {n} rows)")
        counts = np.bincount(y, weights=sample_weight, minlength=classes).astype(np.float32)
        total = float(sample_weight.sum())
        sample_w = ((total / (classes * np.maximum(counts, 1e-6)))[y] * sample_weight)[:, None]
        sample_w = (sample_w * (n / total)).astype(np.float32)  # the same gradient scale as unweighted
    onehot = np.eye(classes, dtype=np.float32)[y]
    m = [np.zeros_like(w), np.zeros_like(b)]
    v = [np.zeros_like(w), np.zeros_like(b)]
    # Embeddings are unit-norm, so logits are tiny at first; a 10x input scale speeds convergence.
    xs = (x * 10.0).astype(np.float32)
    for t in range(1, epochs + 1):
        probs = softmax((xs @ w + b).astype(np.float32))
        grad_logits = (probs - onehot) * sample_w / n
        grads = [xs.T @ grad_logits + l2 * w, grad_logits.sum(axis=0)]
        for i, (param, g) in enumerate(zip((w, b), grads, strict=True)):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            param -= lr * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-8)
    return (w * 10.0).astype(np.float32), b.astype(np.float32)


def fit_heads(
    x: Floats, category: Ints, urgency: Ints, n_category: int, n_urgency: int, seed: int = 0
) -> Heads:
    """Fit both heads on the same embeddings."""
    cw, cb = fit_softmax(x, category, n_category, seed=seed)
    uw, ub = fit_softmax(x, urgency, n_urgency, seed=seed + 1)
    return Heads(cw, cb, uw, ub)


def softmax(logits: Floats) -> Floats:
    """Row-wise softmax, stable for large logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: Floats = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return out


def predict(heads: Heads, x: Floats) -> tuple[Floats, Floats]:
    """Category and urgency probabilities for embeddings ``x``."""
    return softmax(x @ heads.category_w + heads.category_b), softmax(x @ heads.urgency_w + heads.urgency_b)


def macro_f1(y_true: Ints, y_pred: Ints, classes: int) -> float:
    """Unweighted mean of per-class F1 over all ``classes`` (a class never predicted nor present scores 0)."""
    scores = []
    for c in range(classes):
        tp = float(np.sum((y_pred == c) & (y_true == c)))
        fp = float(np.sum((y_pred == c) & (y_true != c)))
        fn = float(np.sum((y_pred != c) & (y_true == c)))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def per_class_f1(y_true: Ints, y_pred: Ints, labels: tuple[str, ...]) -> dict[str, float]:
    """F1 per class name."""
    out = {}
    for c, name in enumerate(labels):
        tp = float(np.sum((y_pred == c) & (y_true == c)))
        fp = float(np.sum((y_pred == c) & (y_true != c)))
        fn = float(np.sum((y_pred != c) & (y_true == c)))
        out[name] = 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)
    return out
