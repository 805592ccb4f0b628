"""Frame source sections of the agent's configuration (camera, folder of images, notes folder)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from edge_agent.config_base import ConfigPath, StrictModel
from protocol.messages import Name


class CameraSourceConfig(StrictModel):
    """A camera: a device index, a video file, or an HTTP(S)/RTSP stream URL (via OpenCV)."""

    type: Literal["camera"] = Field(description="Source plug-in key")
    name: Name = Field(description="Source name, reported with every result")
    url: str | None = Field(default=None, description="Stream URL (HTTP MJPEG, RTSP)")
    device: int | None = Field(default=None, ge=0, description="Local device index (/dev/videoN)")
    path: ConfigPath | None = Field(default=None, description="Video file path")
    fps_limit: float = Field(default=5.0, gt=0, description="Frames per second passed on at most")
    reopen_min_s: float = Field(
        default=0.5, gt=0, description="First delay before reopening a dropped stream"
    )
    reopen_max_s: float = Field(default=30.0, gt=0, description="Largest delay between reopen attempts")

    @model_validator(mode="after")
    def _one_input(self) -> CameraSourceConfig:
        given = [k for k in ("url", "device", "path") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of url, device, path (got {given or 'none'})")
        return self


class FolderSourceConfig(StrictModel):
    """Images in a folder, sorted by name, for replay; none is skipped (BLOCK policy)."""

    type: Literal["folder"] = Field(description="Source plug-in key")
    name: Name = Field(description="Source name, reported with every result")
    path: ConfigPath = Field(description="Folder holding the images")
    pattern: str = Field(default="*.png", min_length=1, description="Glob pattern of the files to read")
    loop: bool = Field(default=False, description="Start again from the first file after the last")
    rate_fps: float = Field(
        default=0.0, ge=0, description="Frames per second at most; 0 = as fast as consumed"
    )


class NotesSourceConfig(StrictModel):
    """Text notes dropped in a folder: one note per ``.txt`` file, or one JSON note per ``.jsonl`` line."""

    type: Literal["notes"] = Field(description="Source plug-in key")
    name: Name = Field(description="Source name, reported with every result")
    path: ConfigPath = Field(description="Folder the notes are written to")
    pattern: str = Field(default="*.txt", min_length=1, description="Glob of note files (.txt or .jsonl)")
    watch: bool = Field(default=False, description="Keep polling for new files and appended lines")
    poll_s: float = Field(default=1.0, gt=0, description="Seconds between folder scans when watching")
    max_chars: int = Field(default=4000, ge=1, description="Longer notes are cut to this many characters")


SourceConfig = Annotated[
    CameraSourceConfig | FolderSourceConfig | NotesSourceConfig, Field(discriminator="type")
]
SOURCE_TYPE_KEYS = ("camera", "folder", "notes")
