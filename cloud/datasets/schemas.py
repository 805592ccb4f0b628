"""Request and response schemas of captures and datasets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from protocol.captures import LABEL_GOOD, LABEL_SKIP, MAX_CAPTURE_FRAMES, FileName
from protocol.inference import ANOMALY_LABEL
from protocol.messages import GatewayId, Name

# Default byte cap of a capture per requested frame: a 1920x1080 camera frame is 2-4 MB as PNG.
DEFAULT_BYTES_PER_FRAME = 4 << 20
MAX_CAPTURE_BYTES = 8 << 30
MAX_LABELS_PER_CALL = 1000
LIST_LIMIT = 500


def _label(value: str) -> str:
    if value == ANOMALY_LABEL:
        raise ValueError(
            f"{value!r} is an anomaly model's own verdict, not a kind; label the frame {LABEL_GOOD!r}, "
            f"{LABEL_SKIP!r} or the defect kind it shows (e.g. scratch)"
        )
    return value


# good, skip, or a defect kind (a model label's shape; not 'anomaly').
FileLabel = Annotated[Name, AfterValidator(_label)]


class CaptureStart(BaseModel):
    """Capture the next ``frames`` frames of ``slot`` on every gateway of ``line``, or on ``gateway``."""

    model_config = ConfigDict(extra="forbid")

    line: Name | None = Field(default=None, description="Every gateway of this line that has the slot")
    gateway: GatewayId | None = Field(default=None, description="This gateway only")
    slot: Name = Field(description="The model slot whose frames are captured, e.g. defect")
    frames: int = Field(ge=1, le=MAX_CAPTURE_FRAMES, description="How many frames per gateway")
    label: FileLabel | None = Field(
        default=None, description="What the parts are now, e.g. good: the files' label until set one by one"
    )
    note: str | None = Field(default=None, max_length=500, description="Why, in the operator's words")
    max_bytes: int | None = Field(
        default=None,
        ge=1 << 20,
        le=MAX_CAPTURE_BYTES,
        description=f"Bytes of frames per gateway at most (default {DEFAULT_BYTES_PER_FRAME >> 20} MiB a frame)",
    )

    @model_validator(mode="after")
    def _one_target(self) -> CaptureStart:
        if (self.line is None) == (self.gateway is None):
            raise ValueError("give exactly one of line and gateway")
        if self.note is not None and "\x00" in self.note:
            raise ValueError("note contains a NUL character")
        return self

    @property
    def byte_cap(self) -> int:
        """The capture's byte cap: given, or the default per frame."""
        return self.max_bytes or min(self.frames * DEFAULT_BYTES_PER_FRAME, MAX_CAPTURE_BYTES)


class DatasetPublic(BaseModel):
    """A capture, requested or registered, with its files' label counts."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    gateway_id: str
    line: str
    station: str | None
    slot: str
    origin: str
    label: str | None = Field(description="The operator's word for the parts at capture time")
    note: str | None
    requested_by: str
    requested_at: datetime
    requested_frames: int
    max_bytes: int
    status: str = Field(description="requested, complete, stopped (fewer frames, see reason) or refused")
    reason: str | None
    started_at: datetime | None
    ended_at: datetime | None
    frames: int
    total_bytes: int
    model: dict[str, Any] | None
    registered_at: datetime | None
    labels: dict[str, int] = Field(
        default_factory=dict, description="Files per label set one by one; 'unlabelled' for the rest"
    )


class DatasetFilePublic(BaseModel):
    """One frame of a dataset."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    sha256: str
    size_bytes: int
    captured_at: datetime
    source: str
    frame: str
    model_label: str | None
    score: float | None
    label: str | None
    labelled_by: str | None
    labelled_at: datetime | None


class DatasetPage(BaseModel):
    """A page of datasets, newest first."""

    items: list[DatasetPublic]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last page")


class DatasetDetail(DatasetPublic):
    """A dataset with one page of its files, in name (capture) order."""

    files: list[DatasetFilePublic]
    files_offset: int
    files_limit: int
    files_next_offset: int | None = Field(description="files_offset of the next page; null on the last")


class LabelsUpdate(BaseModel):
    """Labels for many files at once: file name -> good, skip, a defect kind, or null to clear."""

    model_config = ConfigDict(extra="forbid")

    labels: dict[FileName, FileLabel | None] = Field(min_length=1, max_length=MAX_LABELS_PER_CALL)


class LabelsApplied(BaseModel):
    """What a labels call changed."""

    dataset_id: str
    changed: int = Field(description="Files whose label changed (setting the same label again is no change)")
    labels: dict[str, int] = Field(description="The dataset's files per label after the call")
