"""Request and response schemas of the registry, access-control and rollout endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cloud.ota.lineage import RolloutBrief
from cloud.shadow.schemas import ShadowSlotStatus
from protocol.manifest import ModelManifest
from protocol.messages import Name
from protocol.signing import ManifestSignature


class PublicModel(BaseModel):
    """Base of response schemas: built from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


class BlobStatusPublic(PublicModel):
    """How far an upload got."""

    sha256: str
    size_bytes: int
    received_bytes: int
    complete: bool


class VersionCreate(BaseModel):
    """A new version: the signed manifest (its files uploaded as blobs first) and an optional card."""

    model_config = ConfigDict(extra="forbid")

    manifest: ModelManifest
    signature: ManifestSignature
    card: str | None = Field(None, max_length=200_000, description="Model card, Markdown")


class VersionSummary(PublicModel):
    """A version in a list."""

    name: str
    version: str
    task: str
    sha256: str
    size_bytes: int
    created_at: datetime
    created_by: str


class VersionPublic(VersionSummary):
    """A version in full: manifest (metrics, lineage), signature, card and where it runs now."""

    manifest: dict[str, Any]
    signature: dict[str, Any]
    card: str | None
    signature_warning: str | None = Field(description="Why the check against trusted_keys failed, if it did")
    metrics: dict[str, float] = Field(default_factory=dict)
    lineage: dict[str, Any] | None = None
    artifact_url: str = ""
    running_on: list[str] = Field(default_factory=list, description="Gateways reporting it active")
    training_run: int | None = Field(
        None, description="The training run that made it, when it was taught from a dataset in the cloud"
    )
    dataset_id: str | None = Field(None, description="The dataset it was fit on (its lineage), when known")
    shadow: list[ShadowSlotStatus] = Field(
        default_factory=list, description="Its shadow runs as a challenger: per gateway slot, the evidence"
    )
    rollouts: list[RolloutBrief] = Field(default_factory=list, description="Its rollouts, newest first")


class ModelSummary(BaseModel):
    """A model name with its versions."""

    name: str
    task: str
    versions: list[str]
    latest: str
    untrusted: list[str] = Field(
        default_factory=list,
        description="Versions whose signature the registry's trusted keys did not verify at push: "
        "gateways trusting only those keys will refuse them",
    )


class UserCreate(BaseModel):
    """A new user."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=8, max_length=1024)
    role: str = Field(pattern="^(viewer|operator|admin)$")


class LoginRequest(BaseModel):
    """A user's credentials, exchanged for an API token."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)
    token_name: str | None = Field(
        None,
        max_length=128,
        description="What the token is for (the token list shows it; the audit log names the user)",
    )


class UserPublic(PublicModel):
    """A user, without any secret."""

    id: int
    username: str
    role: str
    created_at: datetime
    disabled: bool


class UserUpdate(BaseModel):
    """What an admin changes about a user."""

    model_config = ConfigDict(extra="forbid")

    disabled: bool = Field(
        strict=True, description="True: the user cannot log in and every token of theirs is revoked"
    )


class TokenCreate(BaseModel):
    """A new API token."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    role: str = Field(pattern="^(viewer|operator|admin|gateway)$")
    gateway_id: str | None = Field(
        default=None, description="The gateway a 'gateway' token is bound to (required for that role)"
    )
    expires: str | None = Field(
        default=None,
        max_length=16,
        description="Lifetime, a number and a unit: 30m, 12h, 30d, 8w; at most 366d, 90d when unset",
        examples=["30d"],
    )


class TokenPublic(PublicModel):
    """A token, without its secret."""

    id: int
    name: str
    prefix: str
    role: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool
    gateway_id: str | None = None
    expires_at: datetime
    user_id: int | None = Field(None, description="The user a login's token was minted for")


class TokenCreated(TokenPublic):
    """A freshly minted token: the only time its secret is shown."""

    token: str


class AuditPublic(PublicModel):
    """One audit log entry."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    user_id: int | None = Field(None, description="The user behind the acting token, if any")


class GatewayUpdate(BaseModel):
    """Admin-managed placement of a gateway."""

    model_config = ConfigDict(extra="forbid")

    site: str | None = Field(None, max_length=128, description="Site (plant) the gateway is in")
    tags: list[str] | None = Field(None, description="Free tags rollouts can target")
    line: Name | None = Field(
        None,
        description="The line the gateway is on: the cloud's record, which its results are stored "
        "under whatever they claim (null: its next birth proposes one)",
    )


class RolloutEventPublic(PublicModel):
    """One rollout event."""

    at: datetime
    kind: str
    message: str
    details: dict[str, Any]


class RolloutPublic(PublicModel):
    """A rollout with its plan and per-gateway progress."""

    id: str
    model_name: str
    version: str
    slot: str
    target: dict[str, Any]
    waves: list[int]
    bake_s: float
    thresholds: dict[str, Any]
    state: str
    wave: int
    reason: str | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    gateways: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Per gateway: wave, status")
    events: list[RolloutEventPublic] = Field(default_factory=list)


class RolloutAction(BaseModel):
    """Why an operator pauses or aborts."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=2000)
