"""Over-the-air model delivery on the wire: desired state (cloud -> gateway, retained) and
reported state (gateway -> cloud, retained), the device-shadow pattern. A gateway that was offline
converges when it returns, because the latest desired state waits for it on the broker.

A desired state is a signed statement (protocol/desired_signing.py): the cloud's desired-state
key signs it whole, offers' ``allow_downgrade`` included, with a revision the gateway only lets
grow and an expiry after which it is ``stale``. Anyone who can publish on the broker can replay,
hold back or edit a message; none of that gets past the signature, the revision and the expiry.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, Field, SerializerFunctionWrapHandler, model_serializer

from protocol.manifest import ModelManifest
from protocol.messages import MAX_WIRE_INT, SCHEMA_VERSION, GatewayId, ModelRef, Name, Text, WireModel
from protocol.signing import ManifestSignature

# Said once: the keys below are left off the wire when empty, so older peers (which refuse unknown
# keys) keep working while no feature needs them.


class ModelOffer(WireModel):
    """One slot's target: the signed manifest itself and where to download its files."""

    manifest: ModelManifest
    signature: ManifestSignature
    artifact_url: str = Field(min_length=1, description="HTTP(S) URL of the ONNX artifact")
    file_urls: dict[str, str] = Field(default_factory=dict, description="URL of each manifest.files entry")
    allow_downgrade: bool = Field(
        default=False, description="Explicit rollback: accept a version older than the installed one"
    )


class DesiredState(WireModel):
    """Which model each slot of one gateway should run. ``revision`` only ever grows."""

    schema_version: Literal[1] = SCHEMA_VERSION
    gateway_id: GatewayId
    revision: int = Field(ge=1, le=MAX_WIRE_INT)
    rollout_id: Text | None = Field(default=None, max_length=64)
    slots: dict[Name, ModelOffer]
    issued_at: AwareDatetime
    challengers: dict[Name, ModelOffer] = Field(
        default_factory=dict,
        description="Per slot, a release to run in shadow beside the slot's model (docs/ota.md, "
        "'Shadow'); promotion is a later revision whose slots offer names the challenger's release",
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="After this the gateway reports the statement stale and does not act on it"
    )
    signature: ManifestSignature | None = Field(
        default=None, description="The cloud's desired-state key over every other field"
    )

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("challengers", "expires_at", "signature"):
            if not data.get(key):
                data.pop(key, None)
        return data


Phase = Literal[
    "idle",
    "downloading",
    "verifying",
    "smoke_testing",
    "swapping",
    "health_window",
    "committed",
    "rolled_back",
    "failed",
]


# SlotHealth's rates, p95 latency and mean confidence cover at most the latest this many
# predictions of the model (``inferences`` counts them all): the cloud reads it to know how many
# parts a reported defect rate stands on. Large enough for the defect-rate gate's default of
# 5,000 parts on each side of an update (protocol/rate_shift.py).
HEALTH_HISTORY = 10_000


class SlotHealth(WireModel):
    """What a slot's model did lately: the rollout engine's health gates read this.

    Rates and figures cover the model's latest :data:`HEALTH_HISTORY` predictions at most.
    """

    inferences: int = Field(ge=0, le=MAX_WIRE_INT)
    errors: int = Field(ge=0, le=MAX_WIRE_INT)
    p95_latency_ms: float | None = Field(default=None, ge=0)
    defect_rate: float | None = Field(default=None, ge=0, le=1)
    mean_confidence: float | None = Field(default=None, ge=0, le=1)


ChallengerPhase = Literal["downloading", "verifying", "smoke_testing", "shadowing", "failed"]


class ChallengerReport(WireModel):
    """The slot's challenger: a release run in shadow on the slot's frames, never driving anything."""

    model: ModelRef
    phase: ChallengerPhase
    error: Text | None = Field(default=None, max_length=2000)
    compared: int = Field(default=0, ge=0, le=MAX_WIRE_INT, description="Frames compared since it loaded")
    skipped: int = Field(default=0, ge=0, le=MAX_WIRE_INT, description="Frames it skipped (budget, backlog)")


class SlotReport(WireModel):
    """One slot as it is now."""

    active: ModelRef | None
    previous: ModelRef | None = None
    phase: Phase
    target: ModelRef | None = Field(default=None, description="The version being installed, if any")
    error: Text | None = Field(default=None, max_length=2000)
    health: SlotHealth | None = None
    challenger: ChallengerReport | None = None

    @model_serializer(mode="wrap")
    def _omit_no_challenger(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A cloud that predates challengers refuses unknown keys: a slot without one says nothing.
        data: dict[str, Any] = handler(self)
        if self.challenger is None:
            data.pop("challenger", None)
        return data


RefusalReason = Literal["unsigned", "forged", "stale", "replayed"]


class DesiredRefusal(WireModel):
    """A desired state the gateway did not act on, and why: the models it runs stay as they were."""

    revision: int = Field(ge=0, le=MAX_WIRE_INT)
    reason: RefusalReason
    message: Text = Field(max_length=2000)


class ReportedState(WireModel):
    """What a gateway actually runs, and how far it got with the latest desired revision."""

    schema_version: Literal[1] = SCHEMA_VERSION
    gateway_id: GatewayId
    desired_revision: int = Field(
        ge=0, le=MAX_WIRE_INT, description="The last desired revision the gateway acted on"
    )
    rollout_id: Text | None = Field(default=None, max_length=64)
    slots: dict[Name, SlotReport]
    timestamp: AwareDatetime
    refused: DesiredRefusal | None = Field(
        default=None, description="The latest desired state refused since the last one acted on"
    )

    @model_serializer(mode="wrap")
    def _omit_no_refusal(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.refused is None:
            data.pop("refused", None)
        return data
