"""The inference runtime: ONNX models configured from their manifests, task plug-ins."""

from edge_agent.runtime.model import ModelLoadError, ModelRunner, Prediction, warm_up
from edge_agent.runtime.registry import RUNNERS, Runner, build_runner
from edge_agent.runtime.tasks import TASKS

__all__ = [
    "RUNNERS",
    "TASKS",
    "ModelLoadError",
    "ModelRunner",
    "Prediction",
    "Runner",
    "build_runner",
    "warm_up",
]
