"""The agent's post-processing of anomaly graphs, and that the supervised defect model still works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import domain_models.defect
from edge_agent.frames import Frame
from edge_agent.runtime.anomaly import box_to_source, is_anomaly_graph
from edge_agent.runtime.model import ModelRunner
from edge_agent.runtime.tasks import TASKS
from protocol.inference import normalized_score
from protocol.manifest import ModelManifest, Preprocessing, TensorSpec
from protocol.messages import Box, DefectOutput, utcnow
from simulators.camera_line import CameraLine, CameraLineConfig

DEFECT_CNN = Path(domain_models.defect.__file__).parent / "artifacts" / "defect-cnn-1.0.0.manifest.json"


def _manifest(threshold: float = 2.0) -> ModelManifest:
    return ModelManifest(
        name="anomaly-test",
        version="1",
        task="defect",
        artifact="a.onnx",
        sha256="0" * 64,
        size_bytes=1,
        inputs=(TensorSpec(name="image", shape=("batch", 3, 96, 128)),),
        outputs=(
            TensorSpec(name="score", shape=("batch",)),
            TensorSpec(name="anomaly_map", shape=("batch", 12, 16)),
        ),
        preprocessing=Preprocessing(resize=(128, 96)),
        labels=("good", "anomaly"),
        good_label="good",
        thresholds={"defect": threshold},
        created_at=utcnow(),
    )


def _overlaps(a: Box, b: Box) -> bool:
    return min(a.x + a.w, b.x + b.w) > max(a.x, b.x) and min(a.y + a.h, b.y + b.h) > max(a.y, b.y)


def test_box_surrounds_the_hot_region_in_source_pixels() -> None:
    amap = np.full((2, 12, 16), 0.5, np.float32)
    amap[0, 3:5, 10:13] = 6.0  # cells (10..12, 3..4) -> input px x 80..104, y 24..40
    amap[0, 4, 11] = 8.0
    score = amap.reshape(2, -1).max(axis=1)
    out = TASKS["defect"]([score, amap], _manifest(), 2)
    hot, calm = out
    assert isinstance(hot, DefectOutput)
    assert hot.is_defect
    assert hot.label == "anomaly"
    assert hot.box == Box(x=80, y=24, w=24, h=16)
    source = box_to_source(hot.box, (128, 96), (480, 640, 3))  # a 640x480 camera frame
    assert source == Box(x=400, y=120, w=120, h=80)
    assert _overlaps(source, Box(x=430, y=140, w=20, h=20))
    assert not calm.is_defect
    assert calm.label == "good"
    assert calm.box is None


def test_wire_score_is_half_at_the_threshold_and_bounded() -> None:
    assert normalized_score(2.0, 2.0) == 0.5
    assert normalized_score(0.0, 2.0) == 0.0
    assert 0.99 < normalized_score(1e6, 2.0) < 1.0
    out = TASKS["defect"](
        [np.array([2.0], np.float32), np.full((1, 12, 16), 2.0, np.float32)], _manifest(), 1
    )
    assert out[0].is_defect  # at the threshold counts as a reject, like the calibration
    assert out[0].scores == {"anomaly": 0.5, "good": 0.5}


def test_result_carries_its_raw_score_and_threshold_so_a_score_reads_as_a_multiple() -> None:
    raw = np.array([3.0, 1.0], np.float32)
    hot, calm = TASKS["defect"]([raw, np.full((2, 12, 16), 1.0, np.float32)], _manifest(2.0), 2)
    assert isinstance(hot, DefectOutput)
    assert isinstance(calm, DefectOutput)
    assert (hot.raw_score, hot.threshold, hot.is_defect) == (3.0, 2.0, True)  # 1.5x the threshold
    assert (calm.raw_score, calm.threshold, calm.is_defect) == (1.0, 2.0, False)  # 0.5x


def test_wrong_output_shapes_are_named() -> None:
    with pytest.raises(ValueError, match=r"anomaly-test 1: got score \(2,\)"):
        TASKS["defect"]([np.zeros(2, np.float32), np.zeros((2, 12, 16), np.float32)], _manifest(), 1)


def test_dispatch_is_on_output_names_not_task() -> None:
    anomaly = _manifest()
    supervised = anomaly.model_copy(
        update={"outputs": (TensorSpec(name="probs", shape=("batch", 2)),), "thresholds": {"defect": 0.5}}
    )
    assert is_anomaly_graph(anomaly)
    assert not is_anomaly_graph(supervised)
    out = TASKS["defect"]([np.array([[0.2, 0.8]], np.float32)], supervised, 1)
    assert out[0].label == "anomaly"
    assert out[0].box is None


def test_bundled_supervised_defect_model_still_runs_through_the_defect_task() -> None:
    runner = ModelRunner(DEFECT_CNN, slot="s")
    line = CameraLine(CameraLineConfig(seed=99, defect_rate=1.0, defect_types=("hole",)))
    frames = [line.frame(i) for i in range(4)]
    preds = runner.infer([Frame("c", str(f.index), utcnow(), f.image) for f in frames])
    assert [p.output.label for p in preds].count("hole") >= 3
    assert all(set(p.output.scores) == set(runner.manifest.labels) for p in preds)
