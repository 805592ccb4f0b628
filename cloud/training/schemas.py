"""Request and response schemas of training runs (``/api/v1/training-runs``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cloud.json_types import JsonInt
from protocol.captures import CaptureId
from protocol.messages import Name

RunStatus = Literal["queued", "running", "succeeded", "failed"]
LIST_LIMIT = 200
# The trainer's least good images: 8 to fit on, 5 held out for the threshold
# (domain_models.anomaly.data.MIN_TRAIN_GOOD; the cloud may not import it).
MIN_MAX_IMAGES = 13


class TeachParameters(BaseModel):
    """How the candidate is fit; each field is the ``factory-models train defect`` flag of its name.

    Defaults are the trainer's own, so a run taught from the console is the one an engineer would
    get from the command line on the same frames, but for ``threshold_folds``: a capture of ~150
    frames would leave only 30 held out to set a 1 % threshold (its false rejects ranged 0-16 %
    from capture to capture), so by default every frame sets it, scored out of fold.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: JsonInt = Field(0, ge=0, le=2**31 - 1, description="Split and coreset seed")
    frr: float = Field(0.01, gt=0, lt=1, strict=True, description="False-reject rate the threshold targets")
    coreset: JsonInt = Field(1000, ge=10, le=100_000, description="Memory-bank patches")
    threshold_folds: JsonInt = Field(
        5,
        ge=0,
        le=20,
        description="0: threshold on a held-out fifth; K >= 2: on every frame, each scored by a fit on the other folds",
    )
    max_images: JsonInt = Field(200, ge=MIN_MAX_IMAGES, le=100_000, description="Good images used at most")
    width: JsonInt = Field(256, ge=32, le=1024, description="Model input width")
    height: JsonInt = Field(192, ge=32, le=1024, description="Model input height")
    model_name: Name | None = Field(
        None,
        description="Name of the candidate; unset: the dataset's model when it is an anomaly "
        "(PatchCore) model, else defect-patchcore",
    )

    @field_validator("threshold_folds")
    @classmethod
    def _folds(cls, value: int) -> int:
        if value == 1:
            raise ValueError("1 fold scores nothing out of fold: 0 (held-out fifth) or at least 2")
        return value


class TeachRequest(TeachParameters):
    """A dataset to teach, and how."""

    dataset_id: CaptureId = Field(description="The dataset (capture id) whose frames are the new normal")


class TrainingRunPublic(BaseModel):
    """A training run: its state, what reproduces it, what it measured and what it made."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    dataset_id: str
    status: RunStatus
    awaiting_signature: bool = Field(
        False, description="Succeeded, but the cloud holds no signing key: sign and push it yourself"
    )
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    code_version: str | None
    seed: int
    parameters: dict[str, Any]
    figures: dict[str, Any] | None = Field(description="What the fit measured (threshold, AUROC, F1...)")
    error: str | None
    log_tail: str | None = Field(description="The trainer's last lines of output")
    model_name: str | None
    model_version: str | None
    artifacts: dict[str, Any] | None = Field(description="The candidate's files: name -> sha256, size")
    artifact_sha256: str | None
    registered: bool = Field(False, description="The registry holds this version with this artifact")


class TrainingRunDetail(TrainingRunPublic):
    """One run with its lineage: the dataset's facts and where the model it made runs now."""

    dataset: dict[str, Any] | None = Field(description="The dataset's line, gateway, slot and labels")
    running_on: list[str] = Field(default_factory=list, description="Gateways reporting it active")
    push_commands: list[str] = Field(
        default_factory=list, description="Awaiting a signature: how an engineer signs and pushes it"
    )


class TrainingRunPage(BaseModel):
    """Runs newest first, one page."""

    items: list[TrainingRunPublic]
    limit: int
    offset: int
    next_offset: int | None
