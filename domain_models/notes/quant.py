"""INT8 variants of the notes graph: which MatMuls are quantized, how, and the word-embedding table.

A variant is a ``Scope``. The release pipeline tries the variants in ``CANDIDATES`` order and the
gate judges each on the hand-written DEV notes; ``factory-models quantize notes --scope NAME``
builds one variant alone. Node names are those the torch exporter gives BERT layers
(``/encoder/encoder/layer.<i>/<part>/MatMul``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from domain_models.common import PipelineError

log = logging.getLogger(__name__)

WORD_EMBEDDINGS = "encoder.embeddings.word_embeddings.weight"
LAYERS = 6
# The six weight MatMuls of a BERT layer, by the name fragment of their ONNX node.
PARTS: dict[str, str] = {
    "query": "attention/self/query",
    "key": "attention/self/key",
    "value": "attention/self/value",
    "attn_out": "attention/output/dense",
    "ffn_in": "intermediate/dense",
    "ffn_out": "output/dense",
}
ALL_PARTS = tuple(PARTS)


@dataclass(frozen=True)
class Scope:
    """What an INT8 variant quantizes.

    ``parts`` x ``layers`` are the MatMuls run as dynamic INT8 (int8 weights, uint8 activations
    quantized per note); ``embedding`` is ``"rows"`` (int8, one scale per row) or ``"fp32"``.
    The heads always stay FP32 (0.01% of the weights).
    """

    name: str
    parts: tuple[str, ...] = ALL_PARTS
    layers: tuple[int, ...] = tuple(range(LAYERS))
    embedding: str = "rows"
    per_channel: bool = True
    reduce_range: bool = False
    compute: str = "int8"  # "fp32": int8 weights stored, dequantized once at load (no activation rounding)

    def __post_init__(self) -> None:
        unknown = [p for p in self.parts if p not in PARTS]
        if unknown:
            raise ValueError(f"scope {self.name!r}: unknown parts {unknown}, choose from {list(PARTS)}")
        bad_layers = [i for i in self.layers if not 0 <= i < LAYERS]
        if bad_layers:
            raise ValueError(f"scope {self.name!r}: layers {bad_layers} outside 0..{LAYERS - 1}")
        if self.embedding not in ("rows", "fp32"):
            raise ValueError(
                f"scope {self.name!r}: embedding must be 'rows' or 'fp32', got {self.embedding!r}"
            )
        if self.compute not in ("int8", "fp32"):
            raise ValueError(f"scope {self.name!r}: compute must be 'int8' or 'fp32', got {self.compute!r}")

    def quantized_nodes(self) -> set[str]:
        """ONNX node names of the MatMuls this scope quantizes."""
        return {f"/encoder/encoder/layer.{i}/{PARTS[p]}/MatMul" for i in self.layers for p in self.parts}

    def describe(self) -> str:
        """One line for logs and the card."""
        if not self.parts:
            return f"no MatMuls, embedding table {self.embedding}"
        parts = "all MatMuls" if self.parts == ALL_PARTS else "+".join(self.parts)
        layers = "all layers" if len(self.layers) == LAYERS else "layer" + "s" * (len(self.layers) > 1)
        layers += "" if len(self.layers) == LAYERS else " " + ",".join(map(str, self.layers))
        if self.compute == "fp32":
            how = "int8 weights per column, FP32 compute"
        else:
            how = "dynamic int8 " + ("per-channel" if self.per_channel else "per-tensor")
            how += ", reduce_range" if self.reduce_range else ""
        return f"{parts} of {layers} ({how}), embedding table {self.embedding}"


# Every variant the sensitivity study measured, by name (see the card for their figures).
VARIANTS: dict[str, Scope] = {
    s.name: s
    for s in (
        Scope("full"),
        Scope("full-per-tensor", per_channel=False),
        Scope("full-reduce-range", reduce_range=True),
        Scope("full-emb-fp32", embedding="fp32"),
        Scope("ffn-only", parts=("ffn_in", "ffn_out")),
        Scope("ffn-in-only", parts=("ffn_in",)),
        Scope("no-ffn-out", parts=("query", "key", "value", "attn_out", "ffn_in")),
        Scope("no-last-layer", layers=(0, 1, 2, 3, 4)),
        Scope("qkv-only", parts=("query", "key", "value")),
        Scope("first-3-layers", layers=(0, 1, 2)),
        Scope("attn-qk-out-only", parts=("query", "key", "attn_out")),
        Scope("weights-only", compute="fp32"),
    )
}


def build(fp32: Path, out: Path, scope: Scope) -> None:
    """Write variant ``scope`` of ``fp32`` to ``out`` (dynamic INT8 or int8 weight storage)."""
    if scope.compute == "fp32":
        quantize_weights_only(fp32, out, scope)
    else:
        quantize_scope(fp32, out, scope)


def quantize_scope(fp32: Path, int8: Path, scope: Scope) -> None:
    """Write the INT8 variant ``scope`` of the FP32 graph ``fp32`` to ``int8``."""
    graph = onnx.load(str(fp32))
    present = {n.name for n in graph.graph.node if n.op_type == "MatMul"}
    wanted = scope.quantized_nodes()
    missing = sorted(wanted - present)
    if missing:
        raise PipelineError(f"quantize {scope.name}: {fp32} has no MatMul node {missing[0]!r}")
    exclude = sorted(
        n.name for n in graph.graph.node if n.op_type in ("MatMul", "Gemm") and n.name not in wanted
    )
    # The quantizer logs one INFO line per activation on the root logger; hundreds of them hide ours.
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        quantize_dynamic(
            str(fp32),
            str(int8),
            per_channel=scope.per_channel,
            reduce_range=scope.reduce_range,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=exclude,
        )
    finally:
        root.setLevel(level)
    if scope.embedding == "rows":
        model = onnx.load(str(int8))
        quantize_embedding_rows(model, WORD_EMBEDDINGS)
        onnx.save(model, str(int8))
    log.info("quantized %s -> %s [%s] (%.1f MB)", fp32.name, int8.name, scope.name, int8.stat().st_size / 1e6)


def quantize_embedding_rows(model: onnx.ModelProto, name: str) -> None:
    """Replace the FP32 table ``name`` by int8 rows with one scale per row, dequantized after Gather.

    onnxruntime quantizes a Gather's table with ONE scale for all 30,522 rows, which cost ~1.7
    urgency macro-F1 points; rows quantized one by one keep the embeddings faithful at the same size.
    """
    graph = model.graph
    index = next((i for i, t in enumerate(graph.initializer) if t.name == name), None)
    if index is None:
        raise PipelineError(f"quantize: the graph has no initializer {name!r} to quantize")
    table = numpy_helper.to_array(graph.initializer[index]).astype(np.float32)
    scale = np.abs(table).max(axis=1, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    rows = np.clip(np.round(table / scale), -127, 127).astype(np.int8)
    del graph.initializer[index]
    graph.initializer.extend(
        [
            numpy_helper.from_array(rows, f"{name}_int8"),
            numpy_helper.from_array(scale.astype(np.float32), f"{name}_row_scale"),
        ]
    )
    nodes = list(graph.node)
    rewritten = []
    for node in nodes:
        if node.op_type != "Gather" or node.input[0] != name:
            rewritten.append(node)
            continue
        out, ids = node.output[0], node.input[1]
        rewritten += [
            helper.make_node(
                "Gather", [f"{name}_int8", ids], [f"{out}_int8"], name=f"{node.name}_int8", axis=0
            ),
            helper.make_node(
                "Cast", [f"{out}_int8"], [f"{out}_f"], name=f"{node.name}_cast", to=TensorProto.FLOAT
            ),
            helper.make_node(
                "Gather", [f"{name}_row_scale", ids], [f"{out}_s"], name=f"{node.name}_scale", axis=0
            ),
            helper.make_node("Mul", [f"{out}_f", f"{out}_s"], [out], name=f"{node.name}_dequant"),
        ]
    if len(rewritten) == len(nodes):
        raise PipelineError(f"quantize: no Gather reads {name!r}")
    del graph.node[:]
    graph.node.extend(rewritten)


def quantize_weights_only(fp32: Path, int8: Path, scope: Scope) -> None:
    """Store the scope's MatMul weights as int8 (one scale per output column), compute in FP32.

    Each weight becomes ``Cast(int8) * scale`` in front of its MatMul; onnxruntime folds those
    constants once when the session starts, so inference runs the FP32 kernels on the rounded
    weights: the file is as small as the INT8 graph, activations are never quantized, and speed
    is that of FP32.
    """
    model = onnx.load(str(fp32))
    graph = model.graph
    wanted = scope.quantized_nodes()
    inits = {t.name: i for i, t in enumerate(graph.initializer)}
    new_nodes: list[onnx.NodeProto] = []
    replaced: dict[str, str] = {}
    for node in graph.node:
        if node.op_type != "MatMul" or node.name not in wanted:
            continue
        weight = node.input[1]
        if weight not in inits:
            raise PipelineError(f"quantize {scope.name}: MatMul {node.name!r} has no constant weight")
        if weight not in replaced:
            w = numpy_helper.to_array(graph.initializer[inits[weight]]).astype(np.float32)
            scale = np.abs(w).max(axis=0, keepdims=True) / 127.0
            scale[scale == 0] = 1.0
            q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
            graph.initializer.extend(
                [
                    numpy_helper.from_array(q, f"{weight}_w8"),
                    numpy_helper.from_array(scale.astype(np.float32), f"{weight}_w8_scale"),
                ]
            )
            new_nodes += [
                helper.make_node(
                    "Cast",
                    [f"{weight}_w8"],
                    [f"{weight}_w8_f"],
                    name=f"{weight}_w8_cast",
                    to=TensorProto.FLOAT,
                ),
                helper.make_node(
                    "Mul",
                    [f"{weight}_w8_f", f"{weight}_w8_scale"],
                    [f"{weight}_w8_deq"],
                    name=f"{weight}_w8_deq",
                ),
            ]
            replaced[weight] = f"{weight}_w8_deq"
        node.input[1] = replaced[weight]
    missing = sorted(wanted - {n.name for n in graph.node})
    if missing:
        raise PipelineError(f"quantize {scope.name}: {fp32} has no MatMul node {missing[0]!r}")
    keep = [t for t in graph.initializer if t.name not in replaced]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = new_nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    if scope.embedding == "rows":
        quantize_embedding_rows(model, WORD_EMBEDDINGS)
    onnx.save(model, str(int8))
    log.info(
        "weight-only int8 %s -> %s [%s] (%.1f MB)",
        fp32.name,
        int8.name,
        scope.name,
        int8.stat().st_size / 1e6,
    )
