"""The bundled anomaly model and its INT8 variant: verified releases, runnable by the gateway,
accurate on fresh parts, and INT8 scoring those parts as FP32 does.

onnxruntime + numpy only: a gateway needs no torch to use it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

import domain_models.anomaly
from domain_models.anomaly.data import open_mvtec, read_image
from domain_models.anomaly.evaluate import evaluate_onnx, open_model, run_images
from domain_models.anomaly.stats import spearman
from domain_models.common import session
from edge_agent.frames import Frame
from edge_agent.runtime.model import ModelRunner
from protocol.manifest import artifact_path, load_manifest
from protocol.messages import DefectOutput, utcnow
from simulators.camera_line import CameraLineConfig
from simulators.mvtec import write_mvtec

ARTIFACTS = Path(domain_models.anomaly.__file__).parent / "artifacts"
MANIFEST = ARTIFACTS / "defect-patchcore-1.1.0.manifest.json"
INT8 = ARTIFACTS / "defect-patchcore-int8-1.1.0.manifest.json"
FRESH_SEED = 424242  # never used by the bundle (train 11, test 1011)
# The card reports ~0.97 image AUROC on 140 test frames; 0.85 leaves room for 22-frame noise.
AUROC_FLOOR = 0.85


def test_bundled_release_is_verified_and_matches_its_graph() -> None:
    manifest, onnx_path = open_model(MANIFEST)  # sizes, hashes, and I/O against the graph
    assert manifest.task == "defect"
    assert manifest.labels == ("good", "anomaly")
    assert manifest.thresholds["defect"] > 0
    assert manifest.metrics["image_auroc"] >= 0.9
    assert onnx_path.stat().st_size < 5_000_000
    assert (ARTIFACTS / "MODEL_CARD.md").is_file()


@pytest.mark.parametrize("path", [MANIFEST, INT8], ids=["fp32", "int8"])
def test_bundled_golden_sample_passes_in_the_gateway_runtime(path: Path) -> None:
    manifest = load_manifest(path)
    assert manifest.golden is not None
    runner = ModelRunner(path, slot="defect")
    image = read_image(ARTIFACTS / manifest.golden.input)
    output = runner.infer([Frame("g", "g", utcnow(), image)])[0].output
    assert isinstance(output, DefectOutput)
    assert output.label == manifest.golden.expected_label == "anomaly"
    for label, expected in manifest.golden.expected_scores.items():
        assert abs(output.scores[label] - expected) <= manifest.golden.tolerance


def test_bundled_int8_release_matches_its_graph_and_names_its_parent() -> None:
    fp32, _ = open_model(MANIFEST)
    int8, onnx_path = open_model(INT8)  # sizes, hashes, and I/O against the graph
    assert int8.name == f"{fp32.name}-int8"
    assert int8.version == fp32.version
    assert int8.lineage is not None
    assert int8.lineage.parent_version == fp32.version
    assert [o.name for o in int8.outputs] == [o.name for o in fp32.outputs]
    assert int8.preprocessing == fp32.preprocessing
    assert onnx_path.stat().st_size < artifact_path(MANIFEST, fp32).stat().st_size / 2
    ops = {n.op_type for n in onnx.load(str(onnx_path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # The gate's record: both drops within the 1-point tolerance.
    assert int8.metrics["gate_image_auroc_drop_points"] <= 1.0
    assert int8.metrics["gate_best_f1_drop_points"] <= 1.0


def test_bundled_int8_scores_fresh_parts_as_fp32_does(tmp_path: Path) -> None:
    line = CameraLineConfig(seed=FRESH_SEED)
    data = write_mvtec(tmp_path / "fresh", line, 0, 10, 3, replace(line, seed=FRESH_SEED))
    paths = [t.path for t in open_mvtec(data, min_train=0).test]
    scores = {}
    for path in (MANIFEST, INT8):
        manifest, onnx_path = open_model(path)
        assert manifest.preprocessing is not None
        raw = run_images(session(onnx_path), paths, manifest.preprocessing)[0]
        scores[path] = (raw, raw >= manifest.thresholds["defect"])
    (fp32, fp32_reject), (int8, int8_reject) = scores[MANIFEST], scores[INT8]
    assert spearman(fp32, int8) >= 0.95
    # Far from the threshold the two agree; within 2% of it a label may flip either way.
    near = np.abs(fp32 / load_manifest(MANIFEST).thresholds["defect"] - 1.0) < 0.02
    assert (fp32_reject == int8_reject)[~near].all()
    assert not np.allclose(fp32, int8)


def test_bundled_model_separates_fresh_parts(tmp_path: Path) -> None:
    line = CameraLineConfig(seed=FRESH_SEED)
    data = write_mvtec(tmp_path / "fresh", line, 0, 10, 3, replace(line, seed=FRESH_SEED))
    manifest, onnx_path = open_model(MANIFEST)
    assert manifest.preprocessing is not None
    report = evaluate_onnx(
        onnx_path, manifest.preprocessing, manifest.thresholds["defect"], open_mvtec(data, min_train=0)
    )
    assert report.image_auroc >= AUROC_FLOOR
