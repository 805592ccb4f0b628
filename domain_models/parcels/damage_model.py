"""The damage crop classifier: a tiny CNN over one rectified parcel crop -> P(damaged).

Stride-16 features pooled two ways: the mean sees the box as a whole, the max keeps a small dent
or tear in one corner from being averaged away.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class DamageNet(nn.Module):
    """Crops (N, 3, 64, 96) RGB in [0, 1] -> P(damaged) (N, 1)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv(3, w, 2), _conv(w, w),  # /2
            _conv(w, 2 * w, 2), _conv(2 * w, 2 * w),  # /4
            _conv(2 * w, 3 * w, 2), _conv(3 * w, 3 * w),  # /8
            _conv(3 * w, 4 * w, 2),  # /16
        )  # fmt: skip
        self.head = nn.Linear(8 * w, 1)
        # Training only: where the damage is, at stride 16. One bit per crop is too little signal
        # for a few hundred boxes; the rendered damage mask says which pixels to look at.
        self.where = nn.Conv2d(4 * w, 1, 1)

    def logits_and_map(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-sigmoid score (N, 1) and damage map (N, 1, H/16, W/16)."""
        f = self.features(x)
        pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)
        return self.head(pooled), self.where(f)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid score (N, 1)."""
        return self.logits_and_map(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities (what the ONNX graph returns)."""
        return torch.sigmoid(self.logits(x))
