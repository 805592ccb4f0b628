"""The small CNN defect classifier and its export wrapper (needs torch: the ``train`` extra)."""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int, pool: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class DefectCNN(nn.Module):
    """Five 3x3 conv blocks, then global max pooling.

    Max (not average) pooling because a defect is a few pixels of a 160x120 frame: averaging
    over the whole part would wash it out, the strongest local response should decide.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 8) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _block(in_channels, w),
            _block(w, 2 * w),
            _block(2 * w, 4 * w),
            _block(4 * w, 8 * w),
            _block(8 * w, 12 * w, pool=False),
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(12 * w, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for a normalised batch ``(N, C, H, W)``."""
        feats = self.features(x)
        pooled = torch.amax(feats, dim=(2, 3))
        out: torch.Tensor = self.head(pooled)
        return out


class WithSoftmax(nn.Module):
    """Puts the softmax inside the exported graph, so the runtime reads probabilities directly."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(N, num_classes)``."""
        return torch.softmax(self.model(image), dim=1)
