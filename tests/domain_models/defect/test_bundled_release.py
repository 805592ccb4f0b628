"""The bundled defect model: its manifest, its graph, and its accuracy on parts it never saw.

Runs with onnxruntime, onnx and numpy only; torch is needed to train, never to use the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import domain_models.defect
from domain_models.defect.metrics import evaluate_probs
from edge_agent.runtime.preprocess import to_tensor
from protocol.inference import DEFECT_LABELS
from protocol.manifest import ModelManifest, artifact_path, load_manifest, sha256_file
from simulators.camera_line import CameraLine, CameraLineConfig

ARTIFACTS = Path(domain_models.defect.__file__).parent / "artifacts"
MANIFEST = ARTIFACTS / "defect-cnn-1.0.0.manifest.json"
FRESH_SEED = 424242  # never used by training (train 7, val 1007, tests 2007 / 3007)
# The card reports ~0.99 on 1,500 unseen-seed frames; these floors leave room for 250-frame noise
# while staying far above chance (0.2 accuracy for five balanced classes).
ACCURACY_FLOOR = 0.9
RECALL_FLOOR = 0.9
FALSE_REJECT_CEILING = 0.15


@pytest.fixture(scope="module")
def manifest() -> ModelManifest:
    return load_manifest(MANIFEST)  # also checks the artifact's size and sha256


@pytest.fixture(scope="module")
def session(manifest: ModelManifest) -> ort.InferenceSession:
    return ort.InferenceSession(str(artifact_path(MANIFEST, manifest)), providers=["CPUExecutionProvider"])


def test_manifest_describes_the_release(manifest: ModelManifest) -> None:
    onnx_file = artifact_path(MANIFEST, manifest)
    assert manifest.name == "defect-cnn"
    assert manifest.version == "1.0.0"
    assert manifest.task == "defect"
    assert manifest.labels == DEFECT_LABELS
    assert manifest.good_label == "good"
    assert manifest.thresholds == {"defect": 0.5}
    assert manifest.sha256 == sha256_file(onnx_file)
    assert manifest.size_bytes == onnx_file.stat().st_size < 1_000_000
    assert set(manifest.metrics) == {"accuracy", "defect_recall", "false_reject_rate", "macro_f1"}
    p = manifest.preprocessing
    assert (p.color, p.layout) == ("rgb", "NCHW")
    assert p.scale == pytest.approx(1 / 255)
    assert (ARTIFACTS / "MODEL_CARD.md").read_text().count(manifest.sha256) == 1


def test_onnx_graph_matches_the_manifest(manifest: ModelManifest) -> None:
    model = onnx.load(str(artifact_path(MANIFEST, manifest)))
    onnx.checker.check_model(model)
    assert any(op.domain in ("", "ai.onnx") and op.version == 17 for op in model.opset_import)

    def dims(value: onnx.ValueInfoProto) -> tuple[int | str, ...]:
        return tuple(d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim)

    [inp], [out] = model.graph.input, model.graph.output
    width, height = manifest.preprocessing.resize
    assert (inp.name, dims(inp)) == ("image", ("batch", 3, height, width))
    assert (out.name, dims(out)) == ("probs", ("batch", len(DEFECT_LABELS)))
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [(t.name, t.shape) for t in manifest.inputs] == [("image", ("batch", 3, height, width))]
    assert [(t.name, t.shape) for t in manifest.outputs] == [("probs", ("batch", len(DEFECT_LABELS)))]


def test_outputs_are_probabilities_for_any_batch(
    manifest: ModelManifest, session: ort.InferenceSession
) -> None:
    line = CameraLine(CameraLineConfig(seed=FRESH_SEED))
    frames = [line.frame(i).image for i in range(3)]
    one = session.run(["probs"], {"image": to_tensor(frames[:1], manifest.preprocessing)})[0]
    three = session.run(["probs"], {"image": to_tensor(frames, manifest.preprocessing)})[0]
    assert one.shape == (1, len(DEFECT_LABELS))
    assert three.shape == (3, len(DEFECT_LABELS))
    np.testing.assert_allclose(three.sum(axis=1), 1.0, atol=1e-5)
    assert (three >= 0).all()
    np.testing.assert_allclose(one[0], three[0], atol=1e-5)  # batching does not change answers


def test_accurate_on_fresh_parts_from_an_unseen_seed(
    manifest: ModelManifest, session: ort.InferenceSession
) -> None:
    line = CameraLine(CameraLineConfig(seed=FRESH_SEED, defect_rate=0.8))
    frames = [line.frame(i) for i in range(250)]
    x = to_tensor([f.image for f in frames], manifest.preprocessing)
    probs = session.run(["probs"], {"image": x})[0]
    truth = np.array([DEFECT_LABELS.index(f.truth.label) for f in frames])
    m = evaluate_probs(probs, truth, DEFECT_LABELS, "good", manifest.thresholds["defect"])
    assert m.accuracy >= ACCURACY_FLOOR, m
    assert m.defect_recall >= RECALL_FLOOR, m
    assert m.false_reject_rate <= FALSE_REJECT_CEILING, m
