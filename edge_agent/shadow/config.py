"""The ``shadow:`` section of the agent's configuration: what a challenger may cost, how it is summed up."""

from __future__ import annotations

from pydantic import Field

from edge_agent.config_base import StrictModel


class ShadowCaptureConfig(StrictModel):
    """The capture of a window's disagreeing frames (needs ``captures.enabled`` to upload)."""

    enabled: bool = Field(default=True, description="Keep the frames where champion and challenger disagree")
    frames: int = Field(default=50, ge=1, le=1000, description="Disagreeing frames kept per window at most")
    max_bytes: int = Field(default=32 << 20, ge=1 << 20, description="Bytes of frames per window's capture")


class ShadowConfig(StrictModel):
    """Challengers: releases run in shadow after the champion of their slot, on the same frames."""

    budget_ms: float = Field(
        default=100.0,
        gt=0,
        description="Time the challenger may add to one micro-batch; it runs as many of the batch's "
        "frames as its measured per-frame time fits and skips the rest",
    )
    max_backlog: int | None = Field(
        default=4,
        ge=0,
        description="Frames waiting in the slot's queue above which the challenger skips a whole batch "
        "(the champion is behind); null: never skip for a backlog (a replay keeps its queue full)",
    )
    probe_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="A challenger slower per frame than the whole budget runs one frame this often, "
        "to notice when the CPU has room again",
    )
    window_frames: int = Field(
        default=500, ge=1, description="Frames (compared or skipped) per comparison record at most"
    )
    window_s: float = Field(default=300.0, gt=0, description="Seconds per comparison record at most")
    capture: ShadowCaptureConfig = Field(
        default_factory=ShadowCaptureConfig, description="Disagreeing frames as a capture per window"
    )
