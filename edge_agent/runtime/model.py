"""An ONNX model configured only from its manifest: pre_process -> forward -> post_process."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edge_agent.frames import Frame
from edge_agent.runtime.anomaly import box_to_source
from edge_agent.runtime.preprocess import Tensor, to_tensor
from edge_agent.runtime.tasks import TASKS, Array, Output, PostProcess
from protocol.manifest import ModelManifest, Preprocessing, TensorSpec, artifact_path, load_manifest
from protocol.messages import DefectOutput, LoadedModel, ModelRef, utcnow

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """A model that cannot run here; the message names the manifest and the mismatch."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """One frame's result from one model run."""

    frame: Frame
    output: Output
    latency_ms: float


def _dims_compatible(manifest_dim: int | str, session_dim: Any) -> bool:
    # onnxruntime reports a dynamic dim as a str (its symbolic name) or None.
    if isinstance(manifest_dim, str):
        return not isinstance(session_dim, int)
    return not isinstance(session_dim, int) or session_dim == manifest_dim


def _check_tensors(where: str, kind: str, specs: Sequence[TensorSpec], actual: Sequence[Any]) -> None:
    want = [s.name for s in specs]
    have = [a.name for a in actual]
    if want != have:
        raise ModelLoadError(f"{where}: {kind} names {have} in the ONNX file, manifest says {want}")
    for spec, arg in zip(specs, actual, strict=True):
        shape = list(arg.shape)
        if len(shape) != len(spec.shape):
            raise ModelLoadError(
                f"{where}: {kind} {spec.name} has rank {len(shape)} ({shape}), manifest says "
                f"{len(spec.shape)} ({list(spec.shape)})"
            )
        for i, (m_dim, s_dim) in enumerate(zip(spec.shape, shape, strict=True)):
            if not _dims_compatible(m_dim, s_dim):
                raise ModelLoadError(
                    f"{where}: {kind} {spec.name} dim {i} is {s_dim!r} in the ONNX file, manifest says {m_dim!r}"
                )


def open_session(manifest_path: Path, manifest: ModelManifest, threads: int) -> ort.InferenceSession:
    """An onnxruntime session on the manifest's artifact, checked against the manifest's tensors.

    Sequential, one inter-op thread and ``threads`` intra-op threads: a gateway runs several
    models side by side on few cores, so each gets a predictable share.
    """
    where = str(manifest_path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            str(artifact_path(manifest_path, manifest)),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
    except Exception as exc:  # onnxruntime raises its own exception family for bad graphs
        raise ModelLoadError(f"{where}: onnxruntime cannot load {manifest.artifact}: {exc}") from exc
    _check_tensors(where, "input", manifest.inputs, session.get_inputs())
    _check_tensors(where, "output", manifest.outputs, session.get_outputs())
    return session


class ReleaseIdentity:
    """What every runner says about the release it serves: in each result and in the birth."""

    slot: str
    manifest: ModelManifest

    @property
    def ref(self) -> ModelRef:
        """The exact model identity reported with each result."""
        m = self.manifest
        return ModelRef(name=m.name, version=m.version, sha256=m.sha256)

    @property
    def loaded(self) -> LoadedModel:
        """The model as reported in the birth message."""
        m = self.manifest
        return LoadedModel(name=m.name, version=m.version, sha256=m.sha256, slot=self.slot, task=m.task)


class ModelRunner(ReleaseIdentity):
    """A loaded, verified model ready to run batches of frames."""

    def __init__(self, manifest_path: Path, slot: str, threads: int = 1) -> None:
        where = str(manifest_path)
        self.manifest: ModelManifest = load_manifest(manifest_path)  # verifies size and sha256
        self.slot = slot
        m = self.manifest
        try:
            self.post_process_fn: PostProcess = TASKS[m.task]
        except KeyError:
            raise ModelLoadError(
                f"{where}: no post-processing for task {m.task!r}; known: {sorted(TASKS)}"
            ) from None
        if m.preprocessing is None:
            raise ModelLoadError(
                f"{where}: task {m.task!r} has no image preprocessing; this runtime runs image models"
            )
        self.preprocessing: Preprocessing = m.preprocessing
        if len(m.inputs) != 1:
            raise ModelLoadError(
                f"{where}: exactly one (image) input is supported, manifest has {len(m.inputs)}"
            )
        self._check_image_input(where, m.inputs[0])
        self._session = open_session(manifest_path, m, threads)
        self.input_name = m.inputs[0].name
        self.output_names = [o.name for o in m.outputs]
        self.dynamic_batch = isinstance(m.inputs[0].shape[0], str)
        log.info(
            "slot %s: loaded %s %s (%s, %s batch, %d thread(s))",
            slot,
            m.name,
            m.version,
            m.task,
            "dynamic" if self.dynamic_batch else "fixed",
            threads,
        )

    def _check_image_input(self, where: str, spec: TensorSpec) -> None:
        pre = self.preprocessing
        channels = 1 if pre.color == "gray" else 3
        width, height = pre.resize
        expected = (channels, height, width) if pre.layout == "NCHW" else (height, width, channels)
        if len(spec.shape) != 4:
            raise ModelLoadError(
                f"{where}: input {spec.name} must have rank 4 (batch + image), got {spec.shape}"
            )
        for got, want in zip(spec.shape[1:], expected, strict=True):
            if isinstance(got, int) and got != want:
                raise ModelLoadError(
                    f"{where}: input {spec.name} shape {list(spec.shape)} does not fit preprocessing "
                    f"({pre.layout}, {channels} channel(s), {width}x{height})"
                )
        if isinstance(spec.shape[0], int) and spec.shape[0] != 1:
            raise ModelLoadError(f"{where}: a fixed batch dimension must be 1, got {spec.shape[0]}")

    @property
    def max_batch(self) -> int | None:
        """None when the batch dimension is dynamic, else the fixed batch size (1)."""
        return None if self.dynamic_batch else 1

    def pre_process(self, frames: Sequence[Frame]) -> Tensor:
        """Frames -> one input tensor."""
        return to_tensor([f.image for f in frames], self.preprocessing, self.manifest.inputs[0].dtype)

    def forward(self, tensor: Tensor) -> list[Array]:
        """Run the ONNX session."""
        outputs: list[Array] = self._session.run(self.output_names, {self.input_name: tensor})
        return outputs

    def post_process(self, outputs: Sequence[Array], batch: int) -> list[Output]:
        """Raw outputs -> task outputs (one per frame)."""
        return self.post_process_fn(outputs, self.manifest, batch)

    def warm_up(self) -> None:
        """Run one black frame so the first real frame does not pay for allocation."""
        warm_up(self)

    def infer(self, frames: Sequence[Frame]) -> list[Prediction]:
        """Run the whole pipeline on up to one batch; a fixed-batch model runs frame by frame."""
        if not frames:
            return []
        if not self.dynamic_batch and len(frames) > 1:
            return [p for f in frames for p in self.infer([f])]
        started = time.perf_counter()
        outputs = self.post_process(self.forward(self.pre_process(frames)), len(frames))
        # Post-processing sees only the resized tensor: put boxes back into each frame's pixels.
        outputs = [
            o.model_copy(update={"box": box_to_source(o.box, self.preprocessing.resize, f.image.shape)})
            if isinstance(o, DefectOutput) and o.box is not None
            else o
            for o, f in zip(outputs, frames, strict=True)
        ]
        latency_ms = (time.perf_counter() - started) * 1000.0
        return [Prediction(f, o, latency_ms) for f, o in zip(frames, outputs, strict=True)]


def warm_up(runner: ModelRunner) -> None:
    """Run one black frame through the model so the first real frame does not pay for allocation."""
    width, height = runner.preprocessing.resize
    image = np.zeros((height, width, 3), dtype=np.uint8)
    runner.infer([Frame("warm-up", "warm-up", utcnow(), image)])
