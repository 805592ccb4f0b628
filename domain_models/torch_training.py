"""Torch pieces every training pipeline uses: its optimiser, colour jitter and the ONNX export.

Only training imports this module: evaluation and quantization stay torch-free
(``domain_models.common``), so they also run where torch is not installed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import torch


class OneCycleAdamW:
    """AdamW (weight decay 1e-4) under a one-cycle learning rate that peaks at ``lr``."""

    def __init__(self, net: torch.nn.Module, lr: float, total_steps: int) -> None:
        self.optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
        self.schedule = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=lr, total_steps=total_steps
        )

    def step(self, loss: torch.Tensor) -> float:
        """One optimiser and schedule step on ``loss``; returns the loss's value."""
        self.optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        self.optimizer.step()
        self.schedule.step()
        return loss.item()


def colour_jitter(x: torch.Tensor, gen: torch.Generator, base: float, spread: float) -> torch.Tensor:
    """Per-channel gain in [base, base + spread) and, in 3 batches of 10, the channels swapped,
    on a batch (N, 3, H, W) in [0, 1]: belts and lights the model never saw are less of a surprise."""
    x = x * (base + spread * torch.rand(x.shape[0], 3, 1, 1, generator=gen))
    if torch.rand(1, generator=gen).item() < 0.3:
        x = x[:, torch.randperm(3, generator=gen)]
    return x.clamp(0.0, 1.0)


def export_onnx(
    net: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str, output_names: Sequence[str]
) -> None:
    """Export ``net`` for ``example``-shaped input: opset 17, a dynamic batch on every tensor.

    The legacy (TorchScript) exporter on purpose: the dynamo one needs onnxscript at export and
    gives the same graphs here, so the legacy one's deprecation notices (and the tracer's notes on
    Python values it folds into constants) are expected, not faults.
    """
    net.eval()  # dropout off and batch-norm on its running statistics in the exported graph
    names = [input_name, *output_names]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*Constant folding - Only steps=1.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # type: ignore[attr-defined]
        # torch's own exporter calls deprecated helpers; that is torch's business, not the graph's.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            (example,),
            str(path),
            input_names=[input_name],
            output_names=list(output_names),
            dynamic_axes={name: {0: "batch"} for name in names},
            opset_version=17,
            dynamo=False,
        )
    net.eval()  # the legacy exporter can leave modules in training mode
