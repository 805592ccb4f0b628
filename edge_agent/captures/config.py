"""The ``captures:`` section of the agent's configuration: the on-disk store and the upload identity.

The gateway's API token is a secret, so the YAML names where it is (a file, or an environment
variable), never the token itself.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from edge_agent.config_base import ConfigError, ConfigPath, StrictModel

DEFAULT_TOKEN_ENV = "FACTORY_GATEWAY_TOKEN"  # noqa: S105 - the variable's name, not a secret


class DriftCaptureConfig(StrictModel):
    """Captures the agent starts by itself when a slot's drift is confirmed."""

    enabled: bool = Field(default=False, description="Capture on a confirmed drift")
    frames: int = Field(default=60, ge=1, le=1000, description="Frames per drift capture")
    max_bytes: int = Field(default=64 << 20, ge=1 << 20, description="Bytes of frames per drift capture")
    near_threshold: float = Field(
        default=0.15,
        gt=0,
        le=0.5,
        description="Take every frame whose defect probability is within this of 0.5 (the threshold)",
    )
    sample_rate: float = Field(
        default=0.1, ge=0, le=1, description="And this share of the other frames, at random"
    )


class CaptureConfig(StrictModel):
    """Captures: named sets of frames kept on disk and uploaded to the cloud as datasets."""

    enabled: bool = Field(default=False, description="Follow capture orders and upload captures")
    api_url: str | None = Field(default=None, description="The cloud API, e.g. https://cloud.plant:8000")
    token_file: ConfigPath | None = Field(
        default=None, description="File holding this gateway's API token (mode 0600); else token_env"
    )
    token_env: str = Field(
        default=DEFAULT_TOKEN_ENV, description="Environment variable holding the token when no token_file"
    )
    dir: ConfigPath | None = Field(default=None, description="Capture store; default <state_dir>/captures")
    max_bytes: int = Field(
        default=2 << 30, ge=1 << 20, description="Bytes of frames the store keeps at most (all captures)"
    )
    chunk_bytes: int = Field(default=1 << 20, ge=4096, le=16 << 20, description="Upload request size")
    timeout_s: float = Field(default=30.0, gt=0, description="One upload request, seconds")
    retry_min_s: float = Field(default=1.0, gt=0, description="First wait after a failed upload")
    retry_max_s: float = Field(default=300.0, gt=0, description="Longest wait between upload attempts")
    on_drift: DriftCaptureConfig = Field(
        default_factory=DriftCaptureConfig, description="Automatic captures on confirmed drift"
    )

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} must look like http(s)://host[:port]")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _upload_needs_a_url(self) -> CaptureConfig:
        if self.enabled and self.api_url is None:
            raise ValueError("api_url: the cloud API's URL is needed when captures are enabled")
        if self.retry_max_s < self.retry_min_s:
            raise ValueError(f"retry_max_s ({self.retry_max_s}) is below retry_min_s ({self.retry_min_s})")
        return self

    def store_dir(self, state_dir: Path) -> Path:
        """Where captures are kept."""
        return self.dir or state_dir / "captures"

    def token(self) -> str:
        """The gateway's API token, from ``token_file`` or ``token_env``; ConfigError names which."""
        if self.token_file is not None:
            try:
                text = self.token_file.read_text(encoding="utf-8").strip()
                mode = self.token_file.stat().st_mode
            except OSError as exc:
                raise ConfigError(
                    f"captures.token_file: cannot read {self.token_file}: {exc.strerror}"
                ) from None
            if not text:
                raise ConfigError(f"captures.token_file: {self.token_file} is empty")
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(
                    f"captures.token_file: {self.token_file} is readable by others (mode "
                    f"{stat.S_IMODE(mode):o}); chmod 600 it"
                )
            return text
        value = os.environ.get(self.token_env, "").strip()
        if not value:
            raise ConfigError(
                f"captures: no API token: set the environment variable {self.token_env} or captures.token_file"
            )
        return value
