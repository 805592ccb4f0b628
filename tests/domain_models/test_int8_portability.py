"""INT8 that computes the same on every x86 gateway: 7-bit weights, and the golden set agreeing
on the AVX2 kernel path (emulated) and on this machine's (AVX-512 VNNI where it has it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from protocol.manifest import load_manifest
from tests.support.avx2 import run_json

ROOT = Path(__file__).resolve().parents[2] / "domain_models"
ANOMALY_INT8 = ROOT / "anomaly" / "artifacts" / "defect-patchcore-int8-1.1.0.manifest.json"
INT8_GRAPHS = [
    ROOT / "anomaly" / "artifacts" / "defect-patchcore-int8-1.1.0.onnx",
    ROOT / "parcels" / "artifacts" / "parcel-detector-1.1.0.int8.onnx",
    ROOT / "parcels" / "artifacts" / "parcel-damage-1.1.0.int8.onnx",
]
# vpmaddubsw adds two uint8 x int8 products in an int16: 255 x 64 x 2 = 32640 fits, 255 x 127 x 2 does not.
SAFE_WEIGHT = 64


@pytest.mark.parametrize("graph", INT8_GRAPHS, ids=lambda p: p.name)
def test_shipped_int8_weights_cannot_saturate_the_avx2_kernel(graph: Path) -> None:
    model = onnx.load(str(graph))
    consumers = {i for n in model.graph.node if n.op_type in ("Conv", "MatMul", "Gemm") for i in n.input}
    dequantized = {n.input[0]: n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    weights = [
        numpy_helper.to_array(t)
        for t in model.graph.initializer
        if t.data_type == onnx.TensorProto.INT8 and dequantized.get(t.name) in consumers
    ]
    assert weights, f"{graph.name}: no int8 weights feed a Conv/MatMul/Gemm"
    largest = max(int(np.abs(w.astype(np.int32)).max()) for w in weights)
    assert largest <= SAFE_WEIGHT, f"{graph.name}: int8 weight {largest} can saturate int16 pairs on AVX2"


# Emulated Haswell runs ~150x slower than native: the golden set takes about three minutes of one
# core there. A single-process run starts it when collection finishes, to overlap the rest of the
# suite; under xdist (`make test`) the test starts it and the other worker carries on meanwhile.
@pytest.mark.slow
@pytest.mark.emulated_avx2("golden_set_figures.py", str(ANOMALY_INT8))
@pytest.mark.timeout(1200)
def test_bundled_int8_golden_set_gives_the_same_figures_on_the_avx2_path() -> None:
    """The on-install check a gateway without VNNI runs gives this machine's figures, input by input."""
    here = run_json("golden_set_figures.py", str(ANOMALY_INT8), avx2=False)
    avx2 = run_json("golden_set_figures.py", str(ANOMALY_INT8), avx2=True, timeout=1150)
    golden = load_manifest(ANOMALY_INT8).golden_set
    assert golden is not None
    assert len(here["values"]) == len(avx2["values"]) == len(golden.reference)
    assert here["passed"], here["figures"]
    assert avx2["passed"], avx2["figures"]
    # The INT8 integers are exact on both paths; only FP32 rounding around them may differ.
    assert np.allclose(here["values"], avx2["values"], rtol=0, atol=1e-5)
    assert here["figures"]["disagreements"] == avx2["figures"]["disagreements"] == 0
    assert abs(here["figures"]["rank_correlation"] - avx2["figures"]["rank_correlation"]) < 1e-9
    assert avx2["figures"]["build_drift"] <= golden.max_build_drift
