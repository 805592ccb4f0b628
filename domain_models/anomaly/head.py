"""Supervised defect-type head on top of PatchCore, inside the same graph (needs torch).

Used only when labelled defects exist (see :mod:`labelled`). The graph then has a third output,
``defect_type`` (N, 1 + K): a softmax over ("good", type_1 .. type_K). The agent reads it only
for parts the anomaly threshold flags, and names the type when its probability reaches
``thresholds["type"]``; otherwise the part stays "anomaly". The head also flags a part below
the threshold when it names a type with probability >= ``thresholds["type_flag"]`` (0.9 by
default; measured: more recall at the same false rejects). It never clears a flag, so a defect
kind nobody labelled is flagged at least as often as before.

The head is a multinomial logistic regression over a descriptor of the image:

- the backbone feature where the anomaly is (a softmax-weighted mean of the patch features,
  weighted by the smoothed anomaly map): what the defect looks like, not the whole frame;
- map statistics relative to the threshold: peak, mean, share of the map above the threshold
  and above half the peak (the size and shape of the hot region: a hole is compact, a scratch
  long and faint).

Descriptors are standardised with the training mean/std, folded into the linear layer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from domain_models.anomaly.model import AnomalyNet

log = logging.getLogger(__name__)

# Softmax temperature of the map weighting, as a share of the threshold: sharp enough that the
# hot region dominates, soft enough that a few cells (not one) describe it.
TEMPERATURE = 0.05
STATS = 4


class TypeHead(nn.Module):
    """(features, smoothed map) -> class probabilities over ("good", types...)."""

    def __init__(self, channels: int, classes: int, threshold: float) -> None:
        super().__init__()
        self.threshold = float(threshold)
        self.linear = nn.Linear(channels + STATS, classes)

    def descriptor(self, feats: torch.Tensor, smooth: torch.Tensor) -> torch.Tensor:
        """``(N, C, h, w)``, ``(N, h, w)`` -> ``(N, C + STATS)``."""
        m = smooth.flatten(1) / self.threshold  # N, hw
        weights = torch.softmax(m / TEMPERATURE, dim=1)
        pooled = torch.bmm(feats.flatten(2), weights[:, :, None])[:, :, 0]  # N, C
        peak = m.amax(dim=1, keepdim=True)
        mean = m.mean(dim=1, keepdim=True)
        above = (m >= 1.0).float().mean(dim=1, keepdim=True)
        half = (m >= 0.5 * (peak + mean)).float().mean(dim=1, keepdim=True)
        return torch.cat([pooled, torch.log(peak + 1e-6), mean, above, half], dim=1)

    def forward(self, feats: torch.Tensor, smooth: torch.Tensor) -> torch.Tensor:
        """Probabilities ``(N, classes)``."""
        return torch.softmax(self.linear(self.descriptor(feats, smooth)), dim=1)


class TypedAnomalyNet(nn.Module):
    """The exported graph with a head: image -> (score, anomaly_map, defect_type)."""

    blur: torch.Tensor

    def __init__(self, net: AnomalyNet, head: TypeHead) -> None:
        super().__init__()
        # Same submodule names as AnomalyNet's graph ("/features/...", "/head/..."), so the INT8
        # path quantizes the backbone only and the bank re-fit finds the head's tensors.
        self.features = net.features
        self.head = net.head
        self.register_buffer("blur", net.blur.clone())
        self.type_head = head

    def smooth_map(self, feats: torch.Tensor) -> torch.Tensor:
        """The smoothed anomaly map ``(N, h, w)``, exactly as AnomalyNet computes it."""
        dist = self.head(feats)[:, None]
        pad = self.blur.shape[-1] // 2
        return F.conv2d(F.pad(dist, (pad, pad, pad, pad), mode="replicate"), self.blur)[:, 0]

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``score (N,)``, ``anomaly_map (N, h, w)``, ``defect_type (N, 1 + K)``."""
        feats = self.features(image)
        smooth = self.smooth_map(feats)
        return smooth.flatten(1).amax(dim=1), smooth, self.type_head(feats, smooth)


def fit_type_head(
    net: AnomalyNet,
    threshold: float,
    batches: Iterable[torch.Tensor],
    classes: torch.Tensor,
    n_classes: int,
    weight_decay: float = 1e-2,
    steps: int = 200,
) -> TypeHead:
    """Fit on batches of normalised images ``(n, 3, H, W)`` with class indices (0 = good), balanced."""
    head = TypeHead(net.features.channels, n_classes, threshold)
    typed = TypedAnomalyNet(net, head).eval()
    chunks = []
    with torch.no_grad():
        for images in batches:
            feats = net.features(images)
            chunks.append(head.descriptor(feats, typed.smooth_map(feats)))
    x = torch.cat(chunks)
    if len(x) != len(classes):
        raise ValueError(f"fit_type_head: {len(x)} images but {len(classes)} class indices")
    mean, std = x.mean(dim=0), x.std(dim=0).clamp_min(1e-6)
    z = (x - mean) / std
    counts = torch.bincount(classes, minlength=n_classes).float()
    if (counts == 0).any():
        raise ValueError(f"fit_type_head: a class has no examples (counts {counts.tolist()})")
    weights = counts.sum() / (n_classes * counts)
    linear = nn.Linear(z.shape[1], n_classes)
    optimiser = torch.optim.LBFGS(linear.parameters(), lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = F.cross_entropy(linear(z), classes, weight=weights)
        loss = loss + weight_decay * (linear.weight**2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimiser.step(closure)  # type: ignore[no-untyped-call]
    with torch.no_grad():
        # Fold the standardisation into the layer: W (x - mu) / s + b = (W / s) x + (b - W mu / s).
        w = linear.weight / std[None, :]
        head.linear.weight.copy_(w)
        head.linear.bias.copy_(linear.bias - (w * mean[None, :]).sum(dim=1))
        accuracy = float((head.linear(x).argmax(dim=1) == classes).float().mean())
    log.info("type head: %d classes, %d examples, training accuracy %.3f", n_classes, len(classes), accuracy)
    for p in head.parameters():
        p.requires_grad_(False)
    return head.eval()
