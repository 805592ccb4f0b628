"""The inference runtime: ONNX models configured from their manifests, task post-processing plug-ins."""

from edge_agent.runtime.model import ModelLoadError, ModelRunner, Prediction, warm_up
from edge_agent.runtime.tasks import TASKS

__all__ = ["TASKS", "ModelLoadError", "ModelRunner", "Prediction", "warm_up"]
