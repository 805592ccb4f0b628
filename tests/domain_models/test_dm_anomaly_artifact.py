"""The bundled anomaly model: verified release, runnable by the gateway, accurate on fresh parts.

onnxruntime + numpy only: a gateway needs no torch to use it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import domain_models.anomaly
from domain_models.anomaly.data import open_mvtec, read_image
from domain_models.anomaly.evaluate import evaluate_onnx, open_model
from edge_agent.frames import Frame
from edge_agent.runtime.model import ModelRunner
from protocol.manifest import load_manifest
from protocol.messages import utcnow
from simulators.camera_line import CameraLineConfig
from simulators.mvtec import write_mvtec

ARTIFACTS = Path(domain_models.anomaly.__file__).parent / "artifacts"
MANIFEST = ARTIFACTS / "defect-patchcore-1.0.0.manifest.json"
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


def test_bundled_golden_sample_passes_in_the_gateway_runtime() -> None:
    manifest = load_manifest(MANIFEST)
    assert manifest.golden is not None
    runner = ModelRunner(MANIFEST, slot="defect")
    image = read_image(ARTIFACTS / manifest.golden.input)
    output = runner.infer([Frame("g", "g", utcnow(), image)])[0].output
    assert output.label == manifest.golden.expected_label == "anomaly"
    for label, expected in manifest.golden.expected_scores.items():
        assert abs(output.scores[label] - expected) <= manifest.golden.tolerance


def test_bundled_model_separates_fresh_parts(tmp_path: Path) -> None:
    line = CameraLineConfig(seed=FRESH_SEED)
    data = write_mvtec(tmp_path / "fresh", line, 0, 10, 3, replace(line, seed=FRESH_SEED))
    manifest, onnx_path = open_model(MANIFEST)
    assert manifest.preprocessing is not None
    report = evaluate_onnx(
        onnx_path, manifest.preprocessing, manifest.thresholds["defect"], open_mvtec(data, min_train=0)
    )
    assert report.image_auroc >= AUROC_FLOOR
