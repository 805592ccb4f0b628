"""Inference runtime on a tiny ONNX model built here: preprocessing, batching, post-processing, load checks."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from edge_agent.frames import DropPolicy, Frame, FrameQueue
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox
from edge_agent.pipeline import InferenceWorker
from edge_agent.runtime import ModelLoadError, ModelRunner
from edge_agent.runtime.preprocess import to_tensor
from protocol.manifest import ManifestError, Preprocessing
from protocol.messages import ClassificationOutput, DefectOutput, utcnow
from tests.support.agent import SIZE, build_model
from tests.support.waiting import wait_for


def _frame(value: int, ref: str = "f", shape: tuple[int, int] = (24, 32)) -> Frame:
    return Frame("src", ref, utcnow(), np.full((*shape, 3), value, dtype=np.uint8))


def test_preprocessing_resizes_converts_scales_normalizes_and_lays_out() -> None:
    image = np.zeros((4, 6, 3), dtype=np.uint8)
    image[:, :, 0] = 30  # blue
    image[:, :, 2] = 200  # red
    spec = Preprocessing(resize=(3, 2), color="rgb", scale=0.5, mean=(1.0, 2.0, 3.0), std=(2.0, 2.0, 2.0))
    nchw = to_tensor([image, image], spec)
    assert nchw.shape == (2, 3, 2, 3)
    assert nchw.dtype == np.float32
    # RGB order: channel 0 is red; (200 * 0.5 - 1) / 2 = 49.5, blue (30 * 0.5 - 3) / 2 = 6
    assert np.allclose(nchw[:, 0], 49.5)
    assert np.allclose(nchw[:, 1], -1.0)
    assert np.allclose(nchw[:, 2], 6.0)
    nhwc = to_tensor([image], spec.model_copy(update={"layout": "NHWC", "color": "bgr"}))
    assert nhwc.shape == (1, 2, 3, 3)
    assert np.allclose(nhwc[0, :, :, 0], (30 * 0.5 - 1.0) / 2.0)
    gray = to_tensor([image], Preprocessing(resize=(3, 2), color="gray", mean=(0.0,), std=(1.0,)))
    assert gray.shape == (1, 1, 2, 3)


def test_defect_model_labels_dark_good_and_bright_defective(tmp_path: Path) -> None:
    runner = ModelRunner(build_model(tmp_path), "defect")
    assert runner.dynamic_batch
    predictions = runner.infer([_frame(10, "dark"), _frame(250, "bright"), _frame(120, "mid")])
    assert [p.frame.ref for p in predictions] == ["dark", "bright", "mid"]
    dark, bright, mid = (p.output for p in predictions)
    assert isinstance(dark, DefectOutput)
    assert isinstance(bright, DefectOutput)
    assert isinstance(mid, DefectOutput)
    assert (dark.label, dark.is_defect) == ("good", False)
    assert (bright.label, bright.is_defect) == ("scratch", True)
    assert bright.score > 0.99
    assert abs(sum(bright.scores.values()) - 1.0) < 1e-4
    assert mid.label == "good"  # 120/255 < 0.5
    assert all(p.latency_ms > 0 for p in predictions)


def test_defect_below_its_threshold_is_reported_good(tmp_path: Path) -> None:
    runner = ModelRunner(build_model(tmp_path, thresholds={"scratch": 0.999}), "defect")
    # mean 0.6 -> logits (-1, 1) -> p(scratch) ~ 0.88: top label scratch but under 0.999
    (prediction,) = runner.infer([_frame(153)])
    out = prediction.output
    assert isinstance(out, DefectOutput)
    assert (out.label, out.is_defect) == ("good", False)
    assert out.score == pytest.approx(out.scores["good"], abs=1e-6)
    assert out.scores["scratch"] > 0.8
    # The cut-off scratch was judged against rides along, so the console can say "under 99.9%".
    assert out.threshold == 0.999
    (good,) = runner.infer([_frame(0)])
    assert isinstance(good.output, DefectOutput)
    assert good.output.threshold is None  # the good label on top: no cut-off was involved


def test_classification_task_reports_argmax(tmp_path: Path) -> None:
    runner = ModelRunner(build_model(tmp_path, task="classification", labels=("a", "b", "c")), "cls")
    outs = [p.output for p in runner.infer([_frame(0), _frame(255)])]
    assert all(isinstance(o, ClassificationOutput) for o in outs)
    assert [o.label for o in outs] == ["a", "c"]


def _run_worker(runner: ModelRunner, tmp_path: Path, frames: int, max_batch: int) -> InferenceWorker:
    stop = threading.Event()
    queue = FrameQueue(64, stop)
    for i in range(frames):
        queue.put(_frame(0, f"f{i}"), DropPolicy.BLOCK)
    outbox = Outbox(tmp_path / "outbox.db", 1 << 20)
    worker = InferenceWorker(runner, queue, outbox, Metrics(), stop, "line-1", "main", max_batch, 50)
    worker.start()
    try:
        wait_for(lambda: outbox.last_seq == frames, 10, "all frames stored")
    finally:
        stop.set()
        assert worker.join(5)
        outbox.close()
    return worker


def test_dynamic_batch_model_is_micro_batched(tmp_path: Path) -> None:
    runner = ModelRunner(build_model(tmp_path), "defect")
    worker = _run_worker(runner, tmp_path, frames=10, max_batch=4)
    assert worker.batch_sizes == [4, 4, 2]


def test_fixed_batch_model_runs_one_frame_at_a_time(tmp_path: Path) -> None:
    runner = ModelRunner(build_model(tmp_path, dynamic=False), "defect")
    assert not runner.dynamic_batch
    assert len(runner.infer([_frame(0), _frame(255)])) == 2
    worker = _run_worker(runner, tmp_path, frames=5, max_batch=4)
    assert worker.batch_sizes == [1, 1, 1, 1, 1]


def test_manifest_names_that_do_not_match_the_onnx_file_fail_at_load(tmp_path: Path) -> None:
    manifest = build_model(
        tmp_path, manifest_overrides={"inputs": [{"name": "pixels", "shape": ["batch", 3, SIZE, SIZE]}]}
    )
    with pytest.raises(
        ModelLoadError, match=r"input names \['image'\] in the ONNX file, manifest says \['pixels'\]"
    ):
        ModelRunner(manifest, "defect")


def test_manifest_rank_mismatch_fails_at_load(tmp_path: Path) -> None:
    manifest = build_model(
        tmp_path, manifest_overrides={"outputs": [{"name": "probs", "shape": ["batch", 2, 1]}]}
    )
    with pytest.raises(ModelLoadError, match="output probs has rank 2"):
        ModelRunner(manifest, "defect")


def test_preprocessing_that_does_not_fit_the_input_fails_at_load(tmp_path: Path) -> None:
    manifest = build_model(
        tmp_path, manifest_overrides={"preprocessing": {"resize": [SIZE * 2, SIZE], "color": "rgb"}}
    )
    with pytest.raises(ModelLoadError, match="does not fit preprocessing"):
        ModelRunner(manifest, "defect")


def test_tampered_artifact_is_refused(tmp_path: Path) -> None:
    manifest = build_model(tmp_path)
    artifact = tmp_path / "tiny-defect.onnx"
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 0xFF
    artifact.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="does not match manifest"):
        ModelRunner(manifest, "defect")
