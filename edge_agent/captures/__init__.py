"""Captures: bounded, named sets of frames the gateway keeps on disk and uploads as datasets."""

from edge_agent.captures.config import CaptureConfig, DriftCaptureConfig
from edge_agent.captures.service import CaptureService

__all__ = ["CaptureConfig", "CaptureService", "DriftCaptureConfig"]
