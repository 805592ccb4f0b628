"""Per bundled model: inference latency FP32 vs INT8 and the speed ratio, measured in this run.

Feeds are real preprocessed simulator frames (or a tokenized note). Where a bundle ships no INT8
graph, one is made here with the same static QDQ helper the pipeline uses (32 calibration frames),
and labelled so. The anomaly bundle ships its gated INT8 variant (backbone quantized, scoring
head in FP32). The notes bundle ships int8 weights computed in FP32 (its
dynamic INT8 failed the gate; the FP32 graph is 90 MB and not committed), so it has no ratio.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from bench.common import report
from domain_models.common import measure_latency, quantize_static_qdq
from edge_agent.machine import read_machine
from edge_agent.runtime.preprocess import to_tensor
from protocol.manifest import ModelManifest, artifact_path, load_manifest
from simulators.camera_line import CameraLine, CameraLineConfig
from simulators.fleet import bundled_manifest
from simulators.parcel_line import ParcelLine, ParcelLineConfig

Feeds = Mapping[str, np.ndarray]


def _image_feeds(manifest: ModelManifest, kind: str, count: int) -> list[dict[str, np.ndarray]]:
    assert manifest.preprocessing is not None
    if kind == "parcels":
        parcels = ParcelLine(ParcelLineConfig(seed=4321))
        images = [parcels.frame(i).image for i in range(count)]
    else:
        line = CameraLine(CameraLineConfig(seed=4321, defect_rate=0.3))
        images = [line.frame(i).image for i in range(count)]
    return [{manifest.inputs[0].name: to_tensor([img], manifest.preprocessing)} for img in images]


def _note_feeds(manifest_path: Path, manifest: ModelManifest) -> dict[str, np.ndarray]:
    from tokenizers import Tokenizer

    assert manifest.text is not None
    tokenizer = Tokenizer.from_file(str(manifest_path.parent / manifest.text.tokenizer))
    ids = tokenizer.encode("hyd pump P-204 leaking at fitting, pressure dropping to 80 bar").ids
    ids = ids[: manifest.text.max_length]
    return {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, len(ids)), np.int64)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for model, kind, shipped_int8 in (
            ("defect-cnn", "camera", None),
            ("anomaly", "camera", "anomaly/artifacts/defect-patchcore-int8-1.1.0.onnx"),
            ("parcels", "parcels", "parcels/artifacts/parcel-detector-1.1.0.int8.onnx"),
        ):
            path = bundled_manifest(model)
            manifest = load_manifest(path)
            fp32 = artifact_path(path, manifest)
            feeds = _image_feeds(manifest, kind, 32)
            if shipped_int8:
                int8, how = path.parent.parent.parent / shipped_int8, "shipped INT8"
            else:
                int8 = quantize_static_qdq(fp32, Path(tmp) / f"{model}.int8.onnx", feeds)
                how = "INT8 made here"
            for threads in (1, 2):
                a = measure_latency(fp32, feeds[0], threads, runs=args.runs)
                b = measure_latency(int8, feeds[0], threads, runs=args.runs)
                rows.append(
                    (
                        f"{manifest.name} {threads} thread(s)",
                        f"FP32 {a.p50_ms:6.2f} ms   INT8 {b.p50_ms:6.2f} ms   speed ratio {a.p50_ms / b.p50_ms:5.2f}x  ({how})",
                    )
                )
        notes_path = bundled_manifest("notes")
        notes = load_manifest(notes_path)
        for threads in (1, 2):
            c = measure_latency(
                artifact_path(notes_path, notes), _note_feeds(notes_path, notes), threads, runs=args.runs
            )
            rows.append(
                (
                    f"{notes.name} {threads} thread(s)",
                    f"int8 weights, FP32 compute {c.p50_ms:6.2f} ms   (FP32 graph not bundled: no ratio)",
                )
            )
    # INT8 speed depends on the integer kernels the CPU offers (VNNI or only AVX2): say which.
    machine = read_machine()
    rows.insert(
        0,
        (
            "measured on",
            f"{machine.cpu_model or 'unknown CPU'}, class {machine.cpu_class or '?'}, "
            f"features {','.join(machine.features) or '-'}, {machine.cores or '?'} core(s)",
        ),
    )
    report("model latency, batch 1, p50 (FP32 vs INT8)", rows)


if __name__ == "__main__":
    main()
