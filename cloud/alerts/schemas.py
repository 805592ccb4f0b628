"""API shapes of thumbnails, defects, alert rules and alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, model_validator

from cloud.alerts.rules import DRIFT_LEVELS, RuleKind
from cloud.dispositions.schemas import DispositionBrief
from cloud.json_types import JsonInt, whole_number
from protocol.messages import Name

MAX_MIN_RESULTS = 2**31 - 1  # its column is a 32-bit INTEGER


class AlertRuleCreate(BaseModel):
    """A new rule on a line."""

    model_config = ConfigDict(extra="forbid")

    line: Name = Field(description="Line the rule watches")
    kind: RuleKind = Field(description="defect_rate, gateway_offline, outbox_backlog or model_drift")
    # strict: the schema says JSON numbers and booleans, so "5" or 0 for false is refused rather
    # than read as one (the console sends the numbers its form's text spells).
    threshold: float = Field(
        ge=0,
        strict=True,
        description="defect_rate: percent; gateway_offline: seconds silent; outbox_backlog: items; "
        "model_drift: the drift level that alerts, 2 (a slot's drift confirmed, the usual choice) or 1 "
        "(already when suspected)",
    )
    window_s: float | None = Field(
        default=None, gt=0, le=7 * 86400, strict=True, description="defect_rate only: the window in seconds"
    )
    min_results: JsonInt = Field(
        default=1,
        ge=1,
        le=MAX_MIN_RESULTS,
        description="defect_rate only: fewer results in the window never alert",
    )
    enabled: bool = Field(default=True, strict=True, description="Disabled rules are kept but not evaluated")

    @model_validator(mode="after")
    def _per_kind(self) -> AlertRuleCreate:
        if self.kind is RuleKind.DEFECT_RATE:
            if self.window_s is None:
                raise ValueError("window_s: a defect_rate rule needs a window in seconds")
            if self.threshold > 100:
                raise ValueError(f"threshold: a defect rate is a percent (0-100), got {self.threshold}")
        elif self.kind is RuleKind.MODEL_DRIFT and self.threshold not in DRIFT_LEVELS:
            raise ValueError(
                f"threshold: a model_drift rule alerts at drift level 2 (confirmed) or 1 (suspected), "
                f"got {self.threshold:g}"
            )
        if self.kind is not RuleKind.DEFECT_RATE and self.window_s is not None:
            raise ValueError(f"window_s: only defect_rate rules have a window, not {self.kind.value}")
        return self


class AlertRuleUpdate(BaseModel):
    """Changes to a rule; fields left out keep their value, and so do threshold, min_results and
    enabled when null (window_s null means no window). Its line and kind never change."""

    model_config = ConfigDict(extra="forbid")

    threshold: float | None = Field(
        default=None, ge=0, strict=True, description="New threshold (see the rule's kind)"
    )
    window_s: float | None = Field(
        default=None, gt=0, le=7 * 86400, strict=True, description="defect_rate only: new window in seconds"
    )
    # The bounds inside the type, before the validator: else pydantic writes them into the JSON
    # Schema as unknown keys beside its anyOf, which clients then ignore.
    min_results: (
        Annotated[int, Strict(), Field(ge=1, le=MAX_MIN_RESULTS), BeforeValidator(whole_number)] | None
    ) = Field(default=None, description="defect_rate only: new minimum")
    enabled: bool | None = Field(
        default=None, strict=True, description="false: keep the rule but stop evaluating it"
    )


class AlertRulePublic(AlertRuleCreate):
    """A stored rule."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: int
    created_at: datetime
    created_by: str


class AlertPublic(BaseModel):
    """One alert; open while ``closed_at`` is null."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    rule_id: int | None = Field(description="Null once the rule was deleted")
    line: str
    gateway_id: str | None
    subject: str = Field(description="The line (defect_rate) or the gateway id")
    kind: str
    message: str
    value: float = Field(description="Measured value (latest while open)")
    opened_at: datetime
    closed_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None


class CropGeometry(BaseModel):
    """Where a thumbnail sits in its source frame: box pixel bx maps to (bx - x) * tw / w."""

    x: int
    y: int
    w: int
    h: int
    frame_w: int
    frame_h: int
    tw: int = Field(description="Thumbnail width in pixels")
    th: int = Field(description="Thumbnail height in pixels")


class DefectPublic(BaseModel):
    """A recent flagged result of a line, for the gallery."""

    id: UUID
    gateway_id: str
    captured_at: datetime
    label: str
    score: float
    box: dict[str, Any] | None = Field(description="x, y, w, h in source-frame pixels, if any")
    model_name: str
    model_version: str
    has_thumbnail: bool
    thumbnail_url: str | None
    crop: CropGeometry | None = Field(description="Maps the box onto the thumbnail; null if unknown")
    damaged: bool | None = Field(None, description="Parcel results: whether the parcel is damaged")
    output: dict[str, Any] = Field(
        default_factory=dict,
        description="The task output as the gateway sent it: scores, the threshold they were judged "
        "against, a parcel's barcode and lane",
    )
    disposition: DispositionBrief | None = Field(None, description="An operator's current verdict, if any")
