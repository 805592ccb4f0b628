"""The parcel detector: a tiny U-Net predicting (parcel, damage) probability maps at input size.

~40 k parameters. Stride-8 context (dilated) for whole boxes, skips at strides 2 and 4 so the map's
edge lands within a pixel of the box edge: footprint accuracy depends on it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the usual name

from protocol.inference import PARCEL_MAPS

INPUT_SIZE = (256, 144)  # (width, height): 960x540 frames / 3.75; both divisible by 16


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ParcelNet(nn.Module):
    """Image (N, 3, 144, 256) in [0, 1] -> probabilities (N, 2, 144, 256)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.e1 = _conv(3, w, stride=2)  # /2
        self.e2 = nn.Sequential(_conv(w, 2 * w, stride=2), _conv(2 * w, 2 * w))  # /4
        self.e3 = nn.Sequential(_conv(2 * w, 3 * w, stride=2), _conv(3 * w, 3 * w, dilation=2))  # /8
        self.d2 = nn.Sequential(nn.Conv2d(5 * w, 2 * w, 1, bias=False), _conv(2 * w, 2 * w))
        self.d1 = nn.Sequential(nn.Conv2d(3 * w, w, 1, bias=False), _conv(w, w))
        self.head = nn.Conv2d(w, len(PARCEL_MAPS), 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid maps at half the input resolution (the training loss upsamples them)."""
        f1 = self.e1(x)
        f2 = self.e2(f1)
        f3 = self.e3(f2)
        d2 = self.d2(
            torch.cat([F.interpolate(f3, size=f2.shape[-2:], mode="bilinear", align_corners=False), f2], 1)
        )
        d1 = self.d1(
            torch.cat([F.interpolate(d2, size=f1.shape[-2:], mode="bilinear", align_corners=False), f1], 1)
        )
        out: torch.Tensor = self.head(d1)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities at input resolution (what the ONNX graph returns)."""
        up = F.interpolate(self.logits(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(up)
