"""Request and response schemas of shadow runs (``/api/v1/shadow``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from cloud.ota.schemas import Target
from protocol.messages import ModelRef


class ShadowStart(BaseModel):
    """Run ``model_name`` ``version`` as the challenger of ``slot`` on the targeted gateways."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = Field(min_length=1, description="Registered model name")
    version: str = Field(min_length=1, description="Registered version to shadow")
    slot: str | None = Field(
        None,
        min_length=1,
        description="Gateway model slot; left out: the slot running this model, else the one of its task",
    )
    target: Target


class ShadowStop(BaseModel):
    """Drop the challenger of ``slot`` on the targeted gateways."""

    model_config = ConfigDict(extra="forbid")

    slot: str = Field(min_length=1, description="Gateway model slot")
    target: Target


class ShadowChange(BaseModel):
    """What a start or stop changed: the gateways whose desired state names the change."""

    slot: str
    gateways: list[str]
    challenger: ModelRef | None = Field(description="The challenger now asked for; null after a stop")
    published: bool = Field(
        description="The broker took every desired state; false: start or stop again to re-send"
    )


class ShadowSlotStatus(BaseModel):
    """One gateway slot's shadow run: what is asked, what the gateway says, what it measured."""

    gateway_id: str
    line: str | None
    slot: str
    champion: ModelRef | None = Field(description="The model serving the slot (reported)")
    challenger: ModelRef | None = Field(description="The challenger the desired state names")
    phase: str | None = Field(
        description="The challenger's reported phase (shadowing, failed, ...); 'promoted' once it "
        "serves the slot, its figures then those gathered beside the model it replaced"
    )
    error: str | None
    windows: int = Field(description="Comparison records of this champion and challenger")
    compared: int
    skipped: int
    challenger_errors: int
    agreement: float | None = Field(description="Share of compared frames with the same verdict")
    champion_flag_rate: float | None = Field(description="Share of compared frames the champion flags")
    challenger_flag_rate: float | None = Field(description="Share the challenger would have flagged")
    champion_p95_ms: float | None = Field(description="Largest per-window p95 latency of the champion")
    challenger_p95_ms: float | None = Field(description="Largest per-window p95 latency of the challenger")
    disagreement_captures: list[str] = Field(description="Captures of the frames where they disagreed")
    first_at: datetime | None
    last_at: datetime | None
