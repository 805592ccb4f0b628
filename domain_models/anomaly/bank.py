"""Re-fit a quantized graph's memory bank on its own (INT8) features (numpy + onnx, no torch).

8-bit activations shift every patch feature a little, and always the same way. A bank built
from FP32 features then sees every INT8 patch as slightly "far", which blurs the line between
good and defective. Rebuilding the coreset from the INT8 graph's own features removes that bias.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from onnx import numpy_helper

from domain_models.anomaly.data import read_image
from domain_models.common import PipelineError, session
from edge_agent.runtime.preprocess import to_tensor
from protocol.manifest import Preprocessing

log = logging.getLogger(__name__)

PATCHES = "/head/Transpose_output_0"  # (N, h*w, C): the head's view of the features
BANK_T, BANK_SQ = "head.bank_t", "head.bank_sq"

Floats = npt.NDArray[np.float32]


def greedy_coreset(patches: Floats, size: int, seed: int, proj_dim: int = 64) -> npt.NDArray[np.int64]:
    """Indices of ``size`` patches by greedy k-center on a random projection (PatchCore)."""
    n = patches.shape[0]
    if size >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    z = patches @ (rng.standard_normal((patches.shape[1], proj_dim)).astype(np.float32) / proj_dim**0.5)
    z_sq = (z * z).sum(axis=1)
    chosen = [int(rng.integers(n))]
    min_d = z_sq - 2.0 * (z @ z[chosen[0]]) + z_sq[chosen[0]]
    for _ in range(size - 1):
        nxt = int(np.argmax(min_d))
        chosen.append(nxt)
        np.minimum(min_d, z_sq - 2.0 * (z @ z[nxt]) + z_sq[nxt], out=min_d)
    return np.asarray(chosen, dtype=np.int64)


def refit_bank(onnx_path: Path, images: Sequence[Path], spec: Preprocessing, seed: int) -> None:
    """Replace the bank of ``onnx_path`` (in place) by a coreset of its own features on ``images``."""
    model = onnx.load(str(onnx_path))
    inits = {i.name: i for i in model.graph.initializer}
    if BANK_T not in inits or BANK_SQ not in inits:
        raise PipelineError(f"{onnx_path}: no {BANK_T}/{BANK_SQ} initializers; not a PatchCore graph")
    size = int(inits[BANK_T].dims[1])
    probe = onnx.load(str(onnx_path))
    probe.graph.output.append(onnx.helper.make_tensor_value_info(PATCHES, onnx.TensorProto.FLOAT, None))
    probe_path = onnx_path.with_suffix(".probe.onnx")
    onnx.save(probe, str(probe_path))
    try:
        sess = session(probe_path, threads=2)
        name = sess.get_inputs()[0].name
        patches = np.concatenate(
            [sess.run([PATCHES], {name: to_tensor([read_image(p)], spec)})[0][0] for p in images]
        ).astype(np.float32)
    finally:
        probe_path.unlink(missing_ok=True)
    bank = patches[greedy_coreset(patches, size, seed)]
    inits[BANK_T].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(bank.T), BANK_T))
    inits[BANK_SQ].CopyFrom(numpy_helper.from_array((bank * bank).sum(axis=1)[None, None, :], BANK_SQ))
    onnx.save(model, str(onnx_path))
    log.info("re-fit the bank of %s: %d of %d INT8 patches", onnx_path.name, size, patches.shape[0])
