"""Shared helpers of the domain-model pipelines: quantization, the INT8 gate, latency, metrics, cards.

numpy + onnx + onnxruntime only (no torch), so evaluation and quantization also run where torch
is not installed. Used by ``anomaly``, ``parcels`` and ``notes``:

- :func:`quantize_static_qdq` / :func:`quantize_dynamic_int8`: FP32 ONNX -> INT8 ONNX.
- :func:`gate`: is the INT8 metric within ``tolerance`` points of FP32? (:class:`GateResult`)
- :func:`measure_latency` / :func:`latency_rows`: p50/p90 ms at 1 and 2 threads.
- :func:`roc_auc`, :func:`precision_recall_f1`: threshold-free and at-threshold figures.
- :func:`tensor_specs`, :func:`artifact_fields`, :func:`check_manifest_matches_onnx`: the manifest's
  graph fields from the file, and its I/O checked against the graph.
- :func:`markdown_table`: the tables of a MODEL_CARD.md.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from protocol.manifest import ModelManifest, TensorSpec, artifact_path, sha256_file

log = logging.getLogger(__name__)

Feeds = Mapping[str, np.ndarray]


class PipelineError(RuntimeError):
    """A training/evaluation/quantization problem a user can fix; the message says what and where."""


# --------------------------------------------------------------------------------------------
# Files


def verify_pinned(path: Path, expected_sha256: str, what: str) -> None:
    """Refuse a weights file whose hash is not the pinned one (a changed package, a corrupt file)."""
    if not path.is_file():
        raise PipelineError(f"{what}: weights file {path} not found; install the package that ships it")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise PipelineError(
            f"{what}: {path} has sha256 {actual}, pinned {expected_sha256}; refusing to use it"
        )


# --------------------------------------------------------------------------------------------
# Sessions and latency


def session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """A CPU session with a fixed number of intra-op threads (the gateway's setting)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class Latency:
    """Per-call latency of one model at one thread count, batch of one."""

    threads: int
    p50_ms: float
    p90_ms: float
    runs: int


def measure_latency(path: Path, feeds: Feeds, threads: int = 1, runs: int = 30, warmup: int = 3) -> Latency:
    """Time ``runs`` calls of ``session.run`` on the same feeds after ``warmup`` untimed calls."""
    sess = session(path, threads)
    names = [o.name for o in sess.get_outputs()]
    for _ in range(warmup):
        sess.run(names, dict(feeds))
    times: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        sess.run(names, dict(feeds))
        times.append((time.perf_counter() - started) * 1000.0)
    times.sort()
    return Latency(
        threads=threads,
        p50_ms=statistics.median(times),
        p90_ms=times[min(int(0.9 * len(times)), len(times) - 1)],
        runs=runs,
    )


def latency_rows(
    models: Mapping[str, Path],
    feeds: Feeds,
    threads: Sequence[int] = (1, 2),
    runs: int = 30,
    repeats: int = 3,
) -> list[list[str]]:
    """Rows ``[model, threads, p50 ms, p90 ms, size MB]`` for a card table (see :data:`LATENCY_HEADERS`).

    Each configuration is measured ``repeats`` times, interleaved, and the run with the lowest
    p50 is kept: on a shared machine the other tenants only ever add time.
    """
    best: dict[tuple[str, int], Latency] = {}
    for _ in range(repeats):
        for label, path in models.items():
            for n in threads:
                lat = measure_latency(path, feeds, threads=n, runs=runs)
                if (label, n) not in best or lat.p50_ms < best[label, n].p50_ms:
                    best[label, n] = lat
    rows: list[list[str]] = []
    for label, path in models.items():
        for n in threads:
            lat = best[label, n]
            size_mb = path.stat().st_size / 1e6
            rows.append([label, str(n), f"{lat.p50_ms:.2f}", f"{lat.p90_ms:.2f}", f"{size_mb:.2f}"])
    return rows


LATENCY_HEADERS = ["model", "threads", "p50 ms", "p90 ms", "size MB"]


# --------------------------------------------------------------------------------------------
# Quantization and the gate


class _Batches(CalibrationDataReader):  # type: ignore[misc]
    """Feeds calibration inputs one at a time (onnxruntime's calibration reader protocol)."""

    def __init__(self, feeds: Sequence[Feeds]) -> None:
        self._it: Iterator[Feeds] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        item = next(self._it, None)
        return None if item is None else dict(item)


def quantize_static_qdq(
    fp32: Path,
    int8: Path,
    calibration: Sequence[Feeds],
    per_channel: bool = True,
    method: CalibrationMethod = CalibrationMethod.MinMax,
    exclude_ops: Sequence[str] = (),
    only_prefixes: Sequence[str] = (),
    fp32_prefixes: Sequence[str] = (),
    reduce_range: bool = True,
) -> Path:
    """Static INT8 in QDQ format: per-channel int8 weights, uint8 activations calibrated on inputs.

    Weights are 7-bit (``reduce_range``) so that the result does not depend on the gateway's CPU.
    On x86 without VNNI (AVX2: most Atom, Celeron, Ryzen Embedded and older Xeon gateways)
    onnxruntime multiplies uint8 activations by int8 weights with ``vpmaddubsw``, which adds two
    products in a saturating int16: 255 x 127 x 2 overflows it, 255 x 64 x 2 does not. With full
    8-bit weights the bundled PatchCore scored 5.5 points apart on the same image under the AVX2
    and the AVX-512 VNNI kernels; with 7-bit weights both paths give the same bits
    (``tests/domain_models/test_int8_portability.py`` runs the AVX2 path under qemu). The bit
    lost costs most in a network's first convolutions, which see the raw image: ``fp32_prefixes``
    keeps nodes whose names start with one of them in FP32.

    ``calibration`` is a list of feed dicts (input name -> batch of one), e.g. 32-100 real
    images. ``exclude_ops`` keeps those op types in FP32 (e.g. ``["MatMul", "ReduceMin"]``);
    a non-empty ``only_prefixes`` keeps every node whose name starts with none of them in FP32
    (e.g. ``["/features/"]``: quantize the backbone, not a scoring head).
    """
    if not calibration:
        raise PipelineError(f"quantize {fp32}: no calibration inputs given")
    with tempfile.TemporaryDirectory() as tmp:
        # Shape inference + graph cleanup first, as onnxruntime recommends for static quantization.
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        nodes_to_exclude = [
            n.name
            for n in onnx.load(str(prepared)).graph.node
            if n.op_type in exclude_ops
            or (only_prefixes and not n.name.startswith(tuple(only_prefixes)))
            or (fp32_prefixes and n.name.startswith(tuple(fp32_prefixes)))
        ]
        quantize_static(
            str(prepared),
            str(int8),
            _Batches(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=method,
            nodes_to_exclude=nodes_to_exclude,
            reduce_range=reduce_range,
        )
    log.info(
        "quantized %s -> %s (static QDQ, per_channel=%s, reduce_range=%s)",
        fp32,
        int8,
        per_channel,
        reduce_range,
    )
    return int8


def quantize_dynamic_int8(fp32: Path, int8: Path, per_channel: bool = True) -> Path:
    """Dynamic INT8 (weights int8, activations quantized at run time): for transformers."""
    quantize_dynamic(str(fp32), str(int8), per_channel=per_channel, weight_type=QuantType.QInt8)
    log.info("quantized %s -> %s (dynamic, per_channel=%s)", fp32, int8, per_channel)
    return int8


@dataclass(frozen=True)
class GateResult:
    """FP32 vs INT8 on one metric (0..1 scale); ``passed`` when the drop is within tolerance."""

    metric: str
    fp32: float
    int8: float
    tolerance_points: float

    @property
    def drop_points(self) -> float:
        """FP32 minus INT8, in points (hundredths); negative when INT8 is better."""
        return (self.fp32 - self.int8) * 100.0

    @property
    def passed(self) -> bool:
        """True when INT8 lost at most ``tolerance_points``."""
        return self.drop_points <= self.tolerance_points + 1e-9

    def describe(self) -> str:
        """One line with both figures, for the console and the card."""
        verdict = "within" if self.passed else "EXCEEDS"
        return (
            f"{self.metric}: FP32 {self.fp32:.4f}, INT8 {self.int8:.4f}, drop {self.drop_points:.2f} points "
            f"({verdict} tolerance {self.tolerance_points:.2f})"
        )


def gate(metric: str, fp32: float, int8: float, tolerance_points: float = 1.0) -> GateResult:
    """Compare one metric of FP32 and INT8; the caller writes the INT8 artifact only if it passed."""
    # A negative tolerance is allowed: it demands that INT8 beat FP32 (tests use it to force a refusal).
    return GateResult(metric=metric, fp32=fp32, int8=int8, tolerance_points=tolerance_points)


# --------------------------------------------------------------------------------------------
# Metrics


def roc_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied ranks averaged); labels 1 = positive."""
    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"roc_auc: {y.shape[0]} labels but {s.shape[0]} scores")
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        raise ValueError(f"roc_auc needs both classes, got {pos} positive and {neg} negative")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    sorted_s = s[order]
    # Average ranks over ties so a constant score gives exactly 0.5.
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 of the positive class at one decision."""

    precision: float
    recall: float
    f1: float
    support: int


def precision_recall_f1(truth: npt.ArrayLike, predicted: npt.ArrayLike) -> PRF:
    """Binary precision/recall/F1 (positive = True); 0.0 where undefined."""
    t = np.asarray(truth).astype(bool).ravel()
    p = np.asarray(predicted).astype(bool).ravel()
    tp = int((t & p).sum())
    precision = tp / int(p.sum()) if p.any() else 0.0
    recall = tp / int(t.sum()) if t.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PRF(precision=precision, recall=recall, f1=f1, support=int(t.sum()))


def threshold_at_false_reject(good_scores: npt.ArrayLike, frr: float) -> float:
    """The smallest threshold that rejects at most ``frr`` of ``good_scores`` (score >= thr rejects)."""
    s = np.sort(np.asarray(good_scores, dtype=np.float64).ravel())
    if len(s) == 0:
        raise PipelineError("calibration needs at least one held-out good score")
    if not 0.0 <= frr < 1.0:
        raise PipelineError(f"false-reject rate must be in [0, 1), got {frr}")
    allowed = int(np.floor(frr * len(s)))  # how many good items may score at or above it
    top = s[len(s) - allowed - 1]
    return float(np.nextafter(top, np.inf))


# --------------------------------------------------------------------------------------------
# Manifest <-> graph


def tensor_specs(path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The (inputs, outputs) of an ONNX file as manifest TensorSpecs (dynamic dims by name)."""
    model = onnx.load(str(path), load_external_data=False)
    init_names = {i.name for i in model.graph.initializer}
    types: dict[int, str] = {
        int(onnx.TensorProto.FLOAT): "float32",
        int(onnx.TensorProto.UINT8): "uint8",
        int(onnx.TensorProto.INT64): "int64",
    }

    def spec(value: onnx.ValueInfoProto) -> TensorSpec:
        tt = value.type.tensor_type
        dims: list[int | str] = [
            d.dim_param or "dim" if not d.HasField("dim_value") else d.dim_value for d in tt.shape.dim
        ]
        if tt.elem_type not in types:
            raise PipelineError(f"{path}: tensor {value.name} has unsupported element type {tt.elem_type}")
        return TensorSpec(name=value.name, dtype=types[tt.elem_type], shape=tuple(dims))  # type: ignore[arg-type,unused-ignore]

    inputs = tuple(spec(v) for v in model.graph.input if v.name not in init_names)
    outputs = tuple(spec(v) for v in model.graph.output)
    return inputs, outputs


class ArtifactFields(TypedDict):
    """The manifest fields that describe the graph file itself."""

    artifact: str
    sha256: str
    size_bytes: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def artifact_fields(onnx_path: Path) -> ArtifactFields:
    """Name, hash, size and tensors of ``onnx_path``, read from the file so a manifest cannot drift
    from it: ``ModelManifest(**artifact_fields(path), name=..., ...)``."""
    inputs, outputs = tensor_specs(onnx_path)
    return ArtifactFields(
        artifact=onnx_path.name,
        sha256=sha256_file(onnx_path),
        size_bytes=onnx_path.stat().st_size,
        inputs=inputs,
        outputs=outputs,
    )


def check_manifest_matches_onnx(manifest_path: Path, manifest: ModelManifest) -> None:
    """Raise PipelineError naming the tensor when the manifest's I/O is not the graph's."""
    onnx_path = artifact_path(manifest_path, manifest)
    inputs, outputs = tensor_specs(onnx_path)
    for kind, want, have in (("input", manifest.inputs, inputs), ("output", manifest.outputs, outputs)):
        if [s.name for s in want] != [s.name for s in have]:
            raise PipelineError(
                f"{manifest_path}: {kind}s {[s.name for s in want]} do not match {onnx_path.name}'s "
                f"{[s.name for s in have]}"
            )
        for w, h in zip(want, have, strict=True):
            fixed_mismatch = any(
                isinstance(a, int) and isinstance(b, int) and a != b
                for a, b in zip(w.shape, h.shape, strict=False)
            )
            if w.dtype != h.dtype or len(w.shape) != len(h.shape) or fixed_mismatch:
                raise PipelineError(
                    f"{manifest_path}: {kind} {w.name} is {w.dtype}{list(w.shape)} in the manifest but "
                    f"{h.dtype}{list(h.shape)} in {onnx_path.name}"
                )


# --------------------------------------------------------------------------------------------
# Cards


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table; floats are written with 4 decimals."""

    def cell(v: object) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
