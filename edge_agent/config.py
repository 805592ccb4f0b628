"""The agent's configuration: one pydantic tree, loaded from YAML, secrets from the environment.

Every model forbids unknown keys, so a typo in a plant's YAML is an error naming the bad key's
path, never a silently ignored line. Relative paths resolve against the YAML file's folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edge_agent.captures.config import CaptureConfig
from edge_agent.config_base import ConfigError as ConfigError  # re-exported: the config's public API
from edge_agent.config_base import ConfigPath, StrictModel, resolve_path
from edge_agent.config_sources import SOURCE_TYPE_KEYS
from edge_agent.config_sources import CameraSourceConfig as CameraSourceConfig
from edge_agent.config_sources import FolderSourceConfig as FolderSourceConfig
from edge_agent.config_sources import NotesSourceConfig as NotesSourceConfig
from edge_agent.config_sources import SourceConfig as SourceConfig
from edge_agent.runtime.parcel_routes import ParcelLineSettings, load_route_table
from edge_agent.runtime.registry import SlotSettings
from edge_agent.shadow.config import ShadowConfig
from edge_agent.thumbnails import ThumbnailConfig
from protocol.manifest import ModelManifest
from protocol.messages import MAX_BATCH_ITEMS, Name
from protocol.topics import GATEWAY_ID_PATTERN, TOPIC_ROOT, TopicSpace


class TlsConfig(StrictModel):
    """TLS material for the broker connection; all None means plain TCP (unless the URL is mqtts://)."""

    ca_file: ConfigPath | None = Field(
        default=None, description="CA bundle that signed the broker's certificate"
    )
    cert_file: ConfigPath | None = Field(default=None, description="Client certificate (mutual TLS)")
    key_file: ConfigPath | None = Field(default=None, description="Private key of the client certificate")

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        return self

    @property
    def enabled(self) -> bool:
        """Whether any TLS material was configured."""
        return self.ca_file is not None or self.cert_file is not None


class MqttConfig(StrictModel):
    """How to reach the broker."""

    url: str = Field(default="mqtt://127.0.0.1:1883", description="mqtt://host[:port] or mqtts://host[:port]")
    username: str | None = Field(default=None, description="Broker user name (per-gateway credentials)")
    password_env: str | None = Field(
        default=None, description="Name of the environment variable that holds the broker password"
    )
    client_id: str | None = Field(default=None, description="MQTT client id; defaults to the gateway id")
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive interval in seconds")
    publish_timeout_s: float = Field(
        default=10.0, gt=0, description="How long a QoS 1 publish waits for PUBACK"
    )
    reconnect_min_s: int = Field(default=1, ge=1, description="First reconnect delay in seconds")
    reconnect_max_s: int = Field(default=30, ge=1, description="Largest reconnect delay in seconds")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS files")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"{value!r} must look like mqtt://host[:port] or mqtts://host[:port]")
        _ = parts.port  # raises ValueError on a bad port
        return value

    @property
    def host(self) -> str:
        """Broker host name from the URL."""
        return urlsplit(self.url).hostname or ""

    @property
    def use_tls(self) -> bool:
        """TLS is on for mqtts:// URLs or when any TLS file is configured."""
        return urlsplit(self.url).scheme == "mqtts" or self.tls.enabled

    @property
    def port(self) -> int:
        """Broker port from the URL (1883, or 8883 with TLS, when omitted)."""
        return urlsplit(self.url).port or (8883 if self.use_tls else 1883)

    def password(self) -> str | None:
        """Read the password from the environment variable named by ``password_env``."""
        if self.password_env is None:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(f"mqtt.password_env: environment variable {self.password_env} is not set")
        return value


class ParcelLineConfig(ParcelLineSettings):
    """A parcel line's calibration and sort table; ``routes`` may name a JSON/YAML file instead."""

    @field_validator("routes", mode="before")
    @classmethod
    def _routes_file(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str | Path):
            return load_route_table(resolve_path(Path(value), info))  # ValueError names the file and key
        return value


class ModelSlotConfig(StrictModel):
    """A model slot: which manifest runs there and which sources feed it."""

    slot: Name = Field(description="Slot name (OTA targets slots)")
    manifest: ConfigPath = Field(description="Path to the model's .manifest.json (its sha256 is verified)")
    sources: list[Name] = Field(default_factory=list, description="Source names to feed; empty = all sources")
    parcels: ParcelLineConfig | None = Field(
        default=None,
        description="Parcel line: camera calibration, counting line, sort table (override the release's)",
    )

    @property
    def settings(self) -> SlotSettings:
        """What every model loaded into this slot gets from the config, first model and OTA alike."""
        return SlotSettings(parcels=self.parcels)

    @model_validator(mode="after")
    def _parcels_needs_a_parcel_model(self) -> ModelSlotConfig:
        if self.parcels is None:
            return self
        try:
            task = ModelManifest.model_validate_json(self.manifest.read_bytes()).task
        except (OSError, ValueError):
            return self  # missing or broken: the model load says so, naming the manifest
        if task != "parcels":
            raise ValueError(
                f"parcels: slot {self.slot} runs {self.manifest.name}, a {task!r} model; "
                "a parcels section needs a 'parcels' model"
            )
        return self


class RuntimeConfig(StrictModel):
    """Inference runtime knobs."""

    threads: int = Field(default=1, ge=1, le=64, description="onnxruntime intra-op threads per model")
    max_batch: int = Field(default=8, ge=1, le=256, description="Largest micro-batch (dynamic-batch models)")
    max_wait_ms: float = Field(default=20.0, ge=0, description="How long to wait to fill a micro-batch")
    queue_size: int = Field(
        default=16,
        ge=1,
        description="Frames buffered per model slot; when full a camera drops its oldest, a folder waits",
    )


class OutboxConfig(StrictModel):
    """The durable result outbox."""

    max_bytes: int = Field(default=256 * 1024 * 1024, ge=4096, description="Byte cap; oldest shed beyond it")
    batch_items: int = Field(default=200, ge=1, le=MAX_BATCH_ITEMS, description="Result items per message")
    resend_after_s: float = Field(default=10.0, gt=0, description="Re-send unacked items after this silence")


class HttpConfig(StrictModel):
    """The health and metrics endpoint."""

    host: str = Field(default="127.0.0.1", description="Address to bind")
    port: int = Field(default=9100, ge=0, le=65535, description="Port; 0 picks a free one (logged)")


# Points where the OTA thread can be held for a kill -9 test (swapping = release renamed, pointer not
# yet; promoting = challenger detached, pointer not yet; promoted = pointer names it, runner not swapped).
OtaStep = Literal[
    "downloading",
    "verifying",
    "smoke_testing",
    "swapping",
    "health_window",
    "committing",
    "committed",
    "promoting",
    "promoted",
]


class OtaConfig(StrictModel):
    """Over-the-air model updates: trust, download limits and the health gates of a new model."""

    enabled: bool = Field(default=False, description="Follow the desired state published by the cloud")
    models_dir: ConfigPath | None = Field(
        default=None, description="Release directories and slot pointers; default <state_dir>/models"
    )
    trusted_keys: list[ConfigPath] = Field(
        default_factory=list, description="PEM Ed25519 public keys whose signatures are accepted"
    )
    revoked_keys: list[str] = Field(
        default_factory=list, description="Key ids (16 hex) refused even if listed in trusted_keys"
    )
    desired_keys: list[ConfigPath] = Field(
        default_factory=list,
        description="PEM Ed25519 public keys of the cloud's desired-state signer "
        "(`factory-cloud desired-key`); list the new one beside the old to rotate",
    )
    desired_revoked_keys: list[str] = Field(
        default_factory=list, description="Key ids (16 hex) refused even if listed in desired_keys"
    )
    download_timeout_s: float = Field(
        default=300.0, gt=0, description="Whole download of one file, retries included"
    )
    download_retries: int = Field(
        default=5, ge=0, le=100, description="Resumed attempts after a cut connection"
    )
    health_window_s: float = Field(default=300.0, gt=0, description="Longest health window after a swap")
    health_window_inferences: int = Field(
        default=500,
        ge=0,
        description="End the health window early after this many inferences (0 = time only)",
    )
    max_error_rate: float = Field(default=0.05, ge=0, le=1, description="Failed inferences / all, at most")
    max_p95_latency_ms: float = Field(default=1000.0, gt=0, description="p95 inference latency at most")
    max_defect_rate_shift: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Largest change of the defect rate vs the previous version, either way, once the "
        "change is also beyond sampling noise (protocol/rate_shift.py)",
    )
    max_confidence_shift: float = Field(
        default=0.2, ge=0, le=1, description="Largest change of the mean confidence vs the previous version"
    )
    report_interval_s: float = Field(
        default=30.0, gt=0, description="Re-publish the reported state with fresh health this often"
    )
    min_baseline_inferences: int = Field(
        default=20, ge=1, description="Previous-version inferences needed before shifts are judged"
    )
    min_window_inferences: int = Field(
        default=50,
        ge=1,
        description="New-version inferences needed before its p95 latency and shifts are judged "
        "(the error rate is judged however few)",
    )
    test_pause_at: OtaStep | None = Field(
        default=None, description="Testing only: stop the OTA thread at this step (kill -9 tests)"
    )

    @field_validator("revoked_keys", "desired_revoked_keys")
    @classmethod
    def _key_ids(cls, value: list[str]) -> list[str]:
        bad = [k for k in value if len(k) != 16 or any(c not in "0123456789abcdef" for c in k)]
        if bad:
            raise ValueError(f"revoked key ids must be 16 lower-case hex characters, got {bad}")
        return value

    @model_validator(mode="after")
    def _keys_when_enabled(self) -> OtaConfig:
        if self.enabled and not self.trusted_keys:
            raise ValueError("trusted_keys: at least one public key is needed when OTA is enabled")
        if self.enabled and not self.desired_keys:
            raise ValueError(
                "desired_keys: the cloud's desired-state public key is needed when OTA is enabled "
                "(`factory-cloud desired-key --public-out FILE` writes it)"
            )
        return self

    @model_validator(mode="after")
    def _window_long_enough_to_judge(self) -> OtaConfig:
        # A window that ends before the minimum would commit every update with nothing but its
        # error rate judged: a setting that silently switches the other gates off.
        window = self.health_window_inferences
        if window and self.min_window_inferences > window:
            raise ValueError(
                f"min_window_inferences ({self.min_window_inferences}) is above health_window_inferences "
                f"({window}): the health window would end before latency and shifts are judged"
            )
        return self


class AgentConfig(StrictModel):
    """The whole agent configuration."""

    gateway_id: str = Field(pattern=GATEWAY_ID_PATTERN, description="Gateway id, one MQTT topic level")
    line: Name = Field(description="Production line this gateway watches")
    station: Name = Field(default="main", description="Station on the line")
    topic_root: str = Field(default=TOPIC_ROOT, description="MQTT topic root (versioned)")
    state_dir: ConfigPath = Field(description="Folder for the session counter and the outbox database")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="Broker connection")
    sources: list[SourceConfig] = Field(default_factory=list, description="Frame sources (plug-ins by type)")
    models: list[ModelSlotConfig] = Field(default_factory=list, description="Model slots")
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig, description="Inference runtime")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Durable outbox")
    http: HttpConfig = Field(default_factory=HttpConfig, description="Health/metrics HTTP endpoint")
    telemetry_interval_s: float = Field(default=10.0, gt=0, description="Seconds between telemetry messages")
    ota: OtaConfig = Field(default_factory=OtaConfig, description="Over-the-air model updates")
    thumbnails: ThumbnailConfig = Field(
        default_factory=ThumbnailConfig, description="JPEG crops of flagged items for the console"
    )
    captures: CaptureConfig = Field(
        default_factory=CaptureConfig, description="Frames kept on disk and uploaded as datasets"
    )
    shadow: ShadowConfig = Field(
        default_factory=ShadowConfig, description="Challengers run in shadow beside a slot's model (OTA)"
    )

    @field_validator("topic_root")
    @classmethod
    def _root(cls, value: str) -> str:
        TopicSpace(value)  # raises TopicError (a ValueError) with the reason
        return value

    @model_validator(mode="after")
    def _references(self) -> AgentConfig:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique, repeated: {dupes}")
        slots = [m.slot for m in self.models]
        if len(set(slots)) != len(slots):
            raise ValueError(f"model slots must be unique, got {slots}")
        for i, model in enumerate(self.models):
            unknown = [s for s in model.sources if s not in names]
            if unknown:
                raise ValueError(f"models.{i}.sources: unknown source(s) {unknown}; defined: {names}")
        return self

    @property
    def models_dir(self) -> Path:
        """Where OTA keeps release directories and slot pointers."""
        return self.ota.models_dir or self.state_dir / "models"

    def slot_sources(self, model: ModelSlotConfig) -> list[str]:
        """The source names feeding ``model`` (all sources when it lists none)."""
        return list(model.sources) or [s.name for s in self.sources]


def _error_path(loc: tuple[int | str, ...]) -> str:
    # A discriminated union adds the tag ("camera") to the path; a person wrote sources.0.fps_limit.
    parts: list[str] = []
    for i, part in enumerate(loc):
        if i > 0 and isinstance(loc[i - 1], int) and part in SOURCE_TYPE_KEYS:
            continue
        parts.append(str(part))
    return ".".join(parts) or "<root>"


def parse_config(data: Any, where: str, base_dir: Path | None = None) -> AgentConfig:
    """Validate already-parsed YAML/JSON data; errors name ``where`` and the key path."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return AgentConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        lines = [f"{where}: {_error_path(e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)]
        raise ConfigError("\n".join(lines)) from None


def load_config(path: Path) -> AgentConfig:
    """Load and validate the YAML file at ``path``; raise ConfigError with file, key path and reason."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(data, path.name, base_dir=path.resolve().parent)
